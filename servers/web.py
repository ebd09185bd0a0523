"""The lecture's web server (ourwebserver): GET / says hello, anything else is not found.

    python -m servers.web --port 8080

The lecture wrote "<path> not found" without a status line, so browsers showed garbage;
here it is a real 404 response, and the path is HTML-escaped before it is echoed.
"""

import html

from servers.common import announce, base_parser, fail, run_forever, say
from servers.http_common import PageHandler, make_http_server

DEFAULT_PORT = 8080
HELLO_PAGE = "<html><head><title>hello</title></head><body><h1>hello client</h1></body></html>"


class HelloHandler(PageHandler):
    server_version = "ourwebserver/1.0"

    def do_GET(self):
        path = self.path_only()
        if path == "/":
            self.send_page(200, HELLO_PAGE)
        else:
            self.send_page(
                404, f"<html><body><p>{html.escape(self.shown_path(path))} not found</p></body></html>"
            )


def make_server(host="127.0.0.1", port=DEFAULT_PORT):
    return make_http_server(host, port, HelloHandler)


def main(argv=None):
    args = base_parser(__doc__.splitlines()[0], DEFAULT_PORT).parse_args(argv)
    try:
        server = make_server(args.host, args.port)
    except OSError as exc:
        return fail(f"cannot listen: {exc}")
    announce(server.socket)
    say("welcome to our web server")
    return run_forever(server)


if __name__ == "__main__":
    raise SystemExit(main())
