"""The lecture's web server (ourwebserver): GET / says hello, anything else is not found.

    python -m servers.web               # port 8000, as on the slides

The console, as on the slides (the address, dates and ports vary):

    listening on tcp://127.0.0.1:8000          (forkwatch's address line, always first)
    welcome to our web server
    press ctrl c to stop server
    127.0.0.1 - - [29/Nov/2025 10:00:00] "GET / HTTP/1.1" 200 -
     ctrl c pressed, shutting down             (on Ctrl-C; exit code 0)

The request lines are BaseHTTPServer's own, written to the console (stdout) with the
rest rather than to stderr. The lecture wrote "<path> not found" without a status line,
so browsers showed garbage; here it is a real 404 response, and the path is HTML-escaped
before it is echoed.
"""

import html

from servers.common import Terminated, announce, base_parser, fail, say, stop_on_sigterm
from servers.http_common import PageHandler, make_http_server

DEFAULT_PORT = 8000
CONTROL_CHARACTERS = {code: f"\\x{code:02x}" for code in [*range(0x20), *range(0x7F, 0xA0)]}
HELLO_PAGE = "<html><head><title>hello</title></head><body><h1>hello client</h1></body></html>"


class HelloHandler(PageHandler):
    server_version = "ourwebserver/1.0"

    def do_GET(self):
        path = self.path_only()
        if path == "/":
            self.send_page(200, HELLO_PAGE)
        else:  # fix: a real 404 with a status line, and the echoed path escaped
            self.send_page(
                404, f"<html><body><p>{html.escape(self.shown_path(path))} not found</p></body></html>"
            )

    def log_message(self, format, *args):
        """BaseHTTPServer's request line, in its own format, on the console (stdout)."""
        message = (format % args).translate(CONTROL_CHARACTERS)  # a path cannot forge console lines
        say(f"{self.address_string()} - - [{self.log_date_time_string()}] {message}")


def make_server(host="127.0.0.1", port=DEFAULT_PORT):
    return make_http_server(host, port, HelloHandler)


def main(argv=None):
    args = base_parser(__doc__.splitlines()[0], DEFAULT_PORT).parse_args(argv)
    try:
        server = make_server(args.host, args.port)
    except OSError as exc:
        return fail(f"cannot listen: {exc}")
    stop_on_sigterm()  # before the address line: a Stop may come the moment it is read
    try:
        announce(server.socket)
        say("welcome to our web server")
        say("press ctrl c to stop server")
        server.serve_forever()
    except Terminated:
        say("SIGTERM received, shutting down")
    except KeyboardInterrupt:
        say(" ctrl c pressed, shutting down")
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
