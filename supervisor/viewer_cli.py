"""`forkwatch viewer`: serve the dashboard's pages as a viewer worker until Ctrl-C.

A worker serves the page, the static files and /live to browsers, relays the supervisor's
events from the message queue, and hands everything else to the supervisor with each
browser's own credentials. It starts no server and holds no token: run as many as the
room needs, on this machine or others, behind any load balancer (WebSocket only, so no
sticky sessions are needed).
"""

import argparse
import logging
import sys

from supervisor.cli import add_public_host, is_loopback, open_app, serve, urls

log = logging.getLogger("forkwatch")


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="forkwatch viewer",
        description="Serve forkwatch's pages to viewers, fed by the supervisor through a message queue.",
    )
    parser.add_argument(
        "--message-queue",
        default=None,
        metavar="URL",
        help="the supervisor's Redis (redis://[:PASSWORD@]HOST:PORT/N); prefer "
        "$FORKWATCH_MESSAGE_QUEUE, which ps does not show",
    )
    parser.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port to listen on (0 = any free port)")
    parser.add_argument(
        "--supervisor",
        default=None,
        metavar="URL",
        help="the supervisor's address (default $FORKWATCH_SUPERVISOR, else supervisor_url "
        "in the config file, else http://127.0.0.1:5000)",
    )
    add_public_host(
        parser,
        "a host name the worker also answers to: the one the browsers use, as the load balancer "
        "in front passes it on; repeatable",
    )
    parser.add_argument("--config", default=None, help="a TOML config file (the supervisor's may be shared)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    from supervisor import create_viewer_app
    from supervisor.core.config import ConfigError

    overrides = dict(host=args.host, port=args.port, config_file=args.config)
    overrides.update(
        message_queue=args.message_queue,
        supervisor_url=args.supervisor,
        public_hosts=args.public_host or None,
    )
    app, server, code = open_app(create_viewer_app, overrides, (ConfigError, ValueError), "forkwatch viewer")
    if server is None:
        return code
    serve(server, app, announce, None, "forkwatch viewer: stopped")
    return 0


def announce(app, server):
    from supervisor.web.message_queue import shown_url

    settings = app.config["FORKWATCH"]
    if not is_loopback(settings["host"]):
        print(
            "warning: this viewer worker listens beyond this machine; anyone on the network can watch",
            flush=True,
        )
    print(
        f"relaying {shown_url(settings['message_queue'])} for the supervisor at {settings['supervisor_url']}",
        flush=True,
    )
    for url in urls(settings["host"], server.server_port):
        print(f"viewers:    {url}", flush=True)
