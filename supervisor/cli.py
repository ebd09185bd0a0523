"""The `forkwatch` command: serve the dashboard until Ctrl-C, then stop everything.

`forkwatch ctl …` controls a running dashboard instead (`supervisor.ctl`); `forkwatch check
FILE --as EXERCISE` checks a student's program without one (`supervisor.check_cli`);
`forkwatch viewer …` serves its pages as a viewer worker (`supervisor.viewer_cli`).
`--serve FILE [--as EXERCISE] [--name NAME] [--opt NAME=SECONDS]` (repeatable) adds a
student's program to the dashboard's servers."""

import argparse
import ipaddress
import logging
import signal
import sys

from supervisor.proc.host import lan_addresses
from supervisor.web.serving import DashboardServer

log = logging.getLogger("forkwatch")


def add_public_host(parser, help):
    parser.add_argument("--public-host", action="append", default=[], metavar="NAME", help=help)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="forkwatch", description="A live, browser-based supervisor for the lecture's servers."
    )
    parser.add_argument(
        "--host", default=None, help="address to listen on (default 127.0.0.1: this machine only)"
    )
    parser.add_argument(
        "--port", type=int, default=None, help="port to listen on (default 5000; 0 = any free port)"
    )
    parser.add_argument(
        "--token",
        default=None,
        help="the instructor's token (every user of this machine sees it in ps: prefer "
        "$FORKWATCH_TOKEN, or the token kept in the config folder)",
    )
    parser.add_argument(
        "--rotate-token",
        action="store_true",
        help="make a new token in the config folder; every instructor session made before ends",
    )
    add_public_host(parser, "a host name the dashboard also answers to (a reverse proxy's); repeatable")
    parser.add_argument("--config", default=None, help="a TOML config file")
    parser.add_argument(
        "--serve",
        action=ServeAction,
        default=[],
        metavar="FILE",
        help="a student's program to supervise, run as `python FILE --port PORT` under limits; "
        "repeatable, each followed by its own --as, --name, --opt",
    )
    parser.add_argument(
        "--as", dest="exercise", action=OfServeAction, metavar="EXERCISE", help="the exercise it solves"
    )
    parser.add_argument(
        "--name", action=OfServeAction, help="its name on the dashboard (default: the file's)"
    )
    parser.add_argument(
        "--opt",
        dest="options",
        action=OfServeAction,
        metavar="NAME=SECONDS",
        help="what its checks must know: timeout (swap), delay (forking_clock)",
    )
    parser.add_argument(
        "--lesson",
        default=None,
        metavar="FILE",
        help="the lesson plan to walk through (TOML; default: the lecture's, supervisor/core/lesson.toml)",
    )
    parser.add_argument(
        "--message-queue",
        default=None,
        metavar="URL",
        help="publish every event to this Redis (redis://[:PASSWORD@]HOST:PORT/N) for viewer "
        "workers; prefer $FORKWATCH_MESSAGE_QUEUE, which ps does not show",
    )
    parser.add_argument(
        "--no-recording",
        dest="recording",
        action="store_const",
        const=False,
        default=None,
        help="record nothing this run (default: every demo is recorded for replay)",
    )
    return parser.parse_args(argv)


class ServeAction(argparse.Action):
    """--serve FILE: one more student's server."""

    def __call__(self, parser, namespace, value, option_string=None):
        namespace.serve = [*namespace.serve, {"file": value}]


class OfServeAction(argparse.Action):
    """--as, --name, --opt: of the --serve just before."""

    def __call__(self, parser, namespace, value, option_string=None):
        if not namespace.serve:
            parser.error(f"{option_string} belongs after the --serve FILE it is about")
        entry = namespace.serve[-1]
        if self.dest != "options":
            if self.dest in entry:
                parser.error(f"{option_string} is given twice for --serve {entry['file']}")
            entry[self.dest] = value
            return
        name, sep, seconds = value.partition("=")
        if not sep or not name:
            parser.error(f"--opt takes NAME=SECONDS, not {value!r}")
        entry.setdefault("options", {})[name] = seconds


def is_loopback(host):
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def urls(host, port):
    """Addresses students can use: the real LAN addresses, never 0.0.0.0."""
    if host in ("0.0.0.0", "::", ""):
        hosts = lan_addresses() or ["127.0.0.1"]
    else:
        hosts = [host]
    return [f"http://{h if ':' not in h else f'[{h}]'}:{port}/" for h in hosts]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["ctl"]:
        from supervisor import ctl

        return ctl.main(argv[1:])
    if argv[:1] == ["viewer"]:
        from supervisor.viewer_cli import main as viewer

        return viewer(argv[1:])
    if argv[:1] == ["check"]:
        from supervisor.check_cli import main as check

        return check(argv[1:])
    args = parse_args(argv)
    if args.token is not None:
        print(
            "warning: --token shows the token to every user of this machine (ps); "
            "prefer FORKWATCH_TOKEN or the token kept in the config folder",
            file=sys.stderr,
            flush=True,
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    from supervisor import create_app
    from supervisor.core.config import ConfigError
    from supervisor.core.guard import AlreadyRunning

    overrides = {
        "host": args.host,
        "port": args.port,
        "token": args.token,
        "config_file": args.config,
        "lesson": args.lesson,
        "public_hosts": args.public_host or None,
        "rotate_token": args.rotate_token,
        "recording": args.recording,
        "message_queue": args.message_queue,
        "serve": args.serve or None,
    }
    app, server, code = open_app(
        create_app, overrides, (ConfigError, ValueError, AlreadyRunning), "forkwatch"
    )
    if server is None:
        return code
    serve(server, app, announce, "forkwatch: stopping every server and client…", "forkwatch: stopped")
    return 0


def open_app(factory, overrides, errors, prog):
    """(app, server, None) made by `factory(overrides)` and listening on its address; else
    (None, None, exit code) having said why: 2 for a setting (`errors`), 1 for an address
    that cannot be had (the app shut down again)."""
    # A shell that starts a program in the background starts it with SIGINT ignored: Ctrl-C
    # (or kill -INT) must still stop every server, so the default handler comes back.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        app = factory(overrides)
    except errors as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return None, None, 2
    settings = app.config["FORKWATCH"]
    try:
        return (
            app,
            DashboardServer(settings["host"], settings["port"], app, settings["request_timeout"]),
            None,
        )
    except OSError as exc:
        app.forkwatch_shutdown()
        print(
            f"{prog}: cannot listen on {settings['host']}:{settings['port']}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return None, None, 1


def serve(server, app, announce, stopping, stopped):
    """Say where to go (`announce(app, server)`), serve until Ctrl-C or SIGTERM, then shut
    the app down, saying so."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:  # from here on, Ctrl-C or SIGTERM (even during the lines below) stops everything
        announce(app, server)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if stopping:
            print(stopping, flush=True)
        server.server_close()
        app.forkwatch_shutdown()
        print(stopped, flush=True)


def announce(app, server):
    """The addresses to open, and the warning when they reach beyond this machine."""
    settings = app.config["FORKWATCH"]
    viewer_urls = urls(settings["host"], server.server_port)
    if not is_loopback(settings["host"]):
        app.config["FORKWATCH_JOIN"] = {"viewer": viewer_urls[0], "all": viewer_urls}
        print(
            "warning: forkwatch listens beyond this machine; anyone on the network can watch "
            "(only the token gives control)",
            flush=True,
        )
    manager = app.extensions["forkwatch"]
    print(f"forkwatch is watching processes by {manager.mechanism}", flush=True)
    print(f"servers run in {manager.containment_text}", flush=True)
    if settings["message_queue"]:
        from supervisor.web.message_queue import shown_url

        print(f"publishing every event to {shown_url(settings['message_queue'])}", flush=True)
    for url in viewer_urls:
        print(f"viewers:    {url}", flush=True)
    print(f"instructor: {viewer_urls[0]}?token={settings['token']}", flush=True)
