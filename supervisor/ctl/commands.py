"""`forkwatch ctl`: control and watch a running dashboard from a shell (supervisorctl's job).

Every command is one or a few calls of the JSON API (`supervisor.ctl.client`); `tail -f`
and `events -f` follow the live stream (`supervisor.ctl.follow`). Exit codes a script can
rely on:
  0  done (for `check --wait`: every check passed).
  1  refused: a check that failed (`check --wait`), the dashboard answered 4xx (its sentence goes to stderr), a PID that is in
     no managed server's tree, a `--wait` that saw the server fail or run out of time, or
     a usage mistake (bad arguments, a bad config file, an unreadable token file).
  2  unreachable: connection refused, no answer in time, a host name that does not
     resolve, an answer that is not the dashboard's JSON, or a 5xx (the dashboard or a
     proxy in front of it failed; the same command may succeed later); for `-f`, the live
     stream was lost and did not come back within its retries.
"""

import argparse
import os
import signal
import sys
import time

from supervisor.core.states import STOPPED_STATES, ServerState
from supervisor.ctl import render
from supervisor.ctl.client import (
    DEFAULT_TIMEOUT,
    OK,
    REFUSED,
    Api,
    CtlError,
    dashboard_url,
    instructor_token,
    parse_options,
    signal_name,
)

WAIT_POLL = 0.1
STOPPED_NAMES = frozenset(state.name for state in STOPPED_STATES)


# --- commands ---------------------------------------------------------------------------------


class Context:
    def __init__(self, api, machine):
        self.api = api
        self.machine = machine

    def show(self, value, words):
        """The API's answer as JSON for scripts, or words for people (none when empty)."""
        if self.machine:
            print(render.as_json(value), flush=True)
        elif words:
            print(words, flush=True)


def poll_until(seconds, fetch, done, late):
    """fetch() until done(answer) says True (or raises); refused with late(answer) when
    `seconds` run out."""
    deadline = time.monotonic() + seconds
    while True:
        answer = fetch()
        if done(answer):
            return answer
        if time.monotonic() >= deadline:
            raise CtlError(REFUSED, late(answer))
        time.sleep(WAIT_POLL)


def wait_until(ctx, args, name, done, what):
    """Poll the server until done(info) says True (or raises); refused when time runs out."""
    return poll_until(
        args.wait,
        lambda: ctx.api.server(name),
        done,
        lambda info: f"{name} did not {what} within {args.wait:g} s (it is {info['state']})",
    )


def running_since(previous_start):
    """done() for --wait after a start: RUNNING in a run newer than previous_start."""

    def done(info):
        if info.get("started_at") in (None, previous_start):
            return False
        if info["state"] in STOPPED_NAMES:
            reason = f": {info['reason']}" if info.get("reason") else ""
            raise CtlError(REFUSED, f"{info['name']} is {info['state']}{reason}")
        return info["state"] == ServerState.RUNNING.name

    return done


def is_stopped(info):
    return info["state"] in STOPPED_NAMES


def cmd_status(ctx, args):
    if args.name:
        info = ctx.api.server(args.name)
        words = render.status_table([info])
        if info.get("tree"):
            words += "\n\n" + render.tree_table(info["tree"])
        ctx.show(info, words)
    else:
        servers = ctx.api.call("GET", "/api/servers")
        ctx.show(servers, render.status_table(servers))


def cmd_start(ctx, args):
    body = {"options": parse_options(args.opt)}
    info = ctx.api.call("POST", ctx.api.server_path(args.name, "start"), body)
    if args.wait is not None:
        info = wait_until(ctx, args, args.name, running_since(None), "become RUNNING")
    ctx.show(info, f"{args.name}: {info['state']}" + (f" as PID {info['pid']}" if info.get("pid") else ""))


def cmd_restart(ctx, args):
    previous = ctx.api.server(args.name).get("started_at") if args.wait is not None else None
    body = {"options": parse_options(args.opt)} if args.opt else {}
    answer = ctx.api.call("POST", ctx.api.server_path(args.name, "restart"), body)
    if args.wait is not None:
        answer = wait_until(ctx, args, args.name, running_since(previous), "restart")
        ctx.show(answer, f"{args.name}: {answer['state']} as PID {answer['pid']}")
    else:
        ctx.show(answer, f"{args.name}: restarting")


def cmd_stop(ctx, args):
    info = ctx.api.call("POST", ctx.api.server_path(args.name, "stop"))
    if args.wait is not None:
        info = wait_until(ctx, args, args.name, is_stopped, "stop")
    ctx.show(info, f"{args.name}: {info['state']}")


def cmd_interrupt(ctx, args):
    try:
        answer = ctx.api.call("POST", ctx.api.server_path(args.name, "interrupt"))
    except CtlError as exc:
        if exc.status != 404:
            raise
        ctx.api.server(args.name)  # refused here when it is the name that is unknown
        raise CtlError(REFUSED, f"this dashboard has no interrupt command: {exc.message}", 404) from None
    ctx.show(answer, f"{args.name}: SIGINT sent (the lecture's Ctrl-C)")


def cmd_kill_children(ctx, args):
    body = {"signal": signal_name(args.signal)}
    result = ctx.api.call("POST", ctx.api.server_path(args.name, "kill-children"), body)
    ctx.show(result, render.kill_report(result))


def find_process(api, pid):
    """The PID's row (with its create_time) in a managed server's tree."""
    for server in api.call("GET", "/api/servers"):
        if server.get("pid") is None:
            continue
        for proc in api.server(server["name"]).get("tree", []):
            if proc["pid"] == pid:
                return proc
    raise CtlError(REFUSED, f"PID {pid} is in no managed server's process tree; forkwatch signals only those")


def cmd_signal(ctx, args):
    name = signal_name(args.signal)
    proc = find_process(ctx.api, args.pid)
    body = {"signal": name, "create_time": proc["create_time"]}
    result = ctx.api.call("POST", f"/api/processes/{args.pid}/signal", body)
    ctx.show(result, f"{result['signal']} sent to PID {result['pid']} of {result['server']}")


def cmd_clients(ctx, args):
    answer = ctx.api.call("POST", ctx.api.server_path(args.name, "clients"), {"count": args.count})
    ctx.show(answer, f"starting {answer['count']} fork clients against {args.name} (batch {answer['batch']})")


def cmd_check(ctx, args):
    """Run the exercise's checks against a managed server; with --wait, print each result
    and exit 0 only when every check passed."""
    begun = ctx.api.call("POST", ctx.api.server_path(args.name, "check"))
    if args.wait is None:
        ctx.show(begun, f"{args.name}: checking as {begun['exercise']} ({len(begun['checks'])} checks)")
        return OK
    path = ctx.api.server_path(args.name, "check")
    summary = poll_until(
        args.wait,
        lambda: ctx.api.call("GET", path),
        lambda summary: summary["run"] == begun["run"] and summary["state"] != "running",
        lambda summary: f"the check of {args.name} did not end within {args.wait:g} s",
    )
    ctx.show(summary, render.check_report(summary))
    return OK if summary["state"] == "passed" else REFUSED


def cmd_stop_all(ctx, args):
    answer = ctx.api.call("POST", "/api/stop-all")
    if args.wait is not None:
        for name in answer.get("stopping", []):
            wait_until(ctx, args, name, is_stopped, "stop")
    stopping = ", ".join(answer.get("stopping", [])) or "nothing was running"
    ctx.show(answer, f"stopping: {stopping}")


def cmd_tail(ctx, args):
    if args.follow:
        from supervisor.ctl.follow import follow_output

        return follow_output(ctx, args.name, args.lines)
    answer = ctx.api.call("GET", ctx.api.server_path(args.name, f"output?tail={args.lines}"))
    ctx.show(answer, "\n".join(answer["lines"]) if answer["lines"] else "")
    return OK


def cmd_events(ctx, args):
    if args.follow:
        from supervisor.ctl.follow import follow_events

        return follow_events(ctx, args.lines)
    answer = ctx.api.call("GET", "/api/events")
    answer["events"] = answer["events"][-args.lines :]
    ctx.show(answer, "\n".join(render.event_line(event) for event in answer["events"]))
    return OK


# --- the command line -------------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    """Usage mistakes exit 1 (refused), keeping 2 for an unreachable dashboard."""

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(REFUSED, f"{self.prog}: {message}\n")


def whole_number(low, high):
    def parse(text):
        if not text.isdigit() or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"give a whole number from {low} to {high}")
        return int(text)

    return parse


def seconds(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 86400:
        raise argparse.ArgumentTypeError("give a number of seconds above 0")
    return value


def build_parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        default=argparse.SUPPRESS,
        help="the dashboard (default: $FORKWATCH_URL, else the config's host and port, else http://127.0.0.1:5000)",
    )
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="JSON output, for scripts"
    )
    parser = Parser(
        prog="forkwatch ctl",
        parents=[common],
        description="Control and watch a running forkwatch dashboard over its JSON API.",
        epilog="exit codes: 0 ok, 1 refused (the dashboard said no, or a usage mistake), "
        "2 unreachable (no connection, no answer in time, or a 5xx)",
    )
    parser.add_argument("--config", default=None, help="the dashboard's TOML config (for its address)")
    parser.add_argument("--token-file", default=None, help="a file holding the instructor's token")
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=DEFAULT_TIMEOUT,
        help="seconds to wait for each answer (default 10)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, words, handler, server=True):
        sub = commands.add_parser(name, help=words, description=words, parents=[common])
        sub.set_defaults(handler=handler)
        if server:
            sub.add_argument("name", metavar="NAME", help="a server's name, as in `status`")
        return sub

    def waits(sub, what):
        sub.add_argument(
            "--wait",
            type=seconds,
            nargs="?",
            const=30.0,
            default=None,
            metavar="SECONDS",
            help=f"return once {what} (default at most 30 s)",
        )

    sub = command("status", "the servers (or one, with its processes)", cmd_status, server=False)
    sub.add_argument("name", metavar="NAME", nargs="?", help="one server: its row and process tree")
    for name, words, handler in (
        ("start", "start a server", cmd_start),
        ("restart", "stop a server, then start it again", cmd_restart),
    ):
        sub = command(name, words, handler)
        sub.add_argument(
            "--opt", action="append", metavar="NAME=VALUE", help="a start option (repeatable): --opt delay=2"
        )
        waits(sub, "it is RUNNING")
    waits(command("stop", "stop a server and its children", cmd_stop), "it has stopped")
    command("interrupt", "SIGINT to the server process alone (the lecture's Ctrl-C)", cmd_interrupt)
    sub = command("kill-children", "signal every child of a server (kill_processes())", cmd_kill_children)
    sub.add_argument("--signal", default="SIGKILL", help="default SIGKILL")
    sub = command("signal", "signal one process of a managed server's tree", cmd_signal, server=False)
    sub.add_argument("pid", metavar="PID", type=whole_number(1, 2**22))
    sub.add_argument("signal", metavar="SIG", help="TERM, SIGTERM, 15, …")
    sub = command("clients", "start N looping fork clients against a server", cmd_clients)
    sub.add_argument("count", metavar="N", type=whole_number(1, 1000))
    for name, words, handler, server in (
        ("tail", "a server's console output", cmd_tail, True),
        ("events", "the timeline: starts, forks, exits, kills", cmd_events, False),
    ):
        sub = command(name, words, handler, server=server)
        sub.add_argument("-f", "--follow", action="store_true", help="keep printing until Ctrl-C")
        sub.add_argument(
            "-n", "--lines", type=whole_number(1, 5000), default=20, help="how many to print first (20)"
        )
    sub = command(
        "check", "run the exercise's checks against a server (a student's, or the lecture's)", cmd_check
    )
    sub.add_argument(
        "--wait",
        type=seconds,
        nargs="?",
        const=300.0,
        default=None,
        metavar="SECONDS",
        help="print each result once the run ends; exit 0 only if every check passed (default at most 300 s)",
    )
    waits(
        command("stop-all", "stop every server and every fork client", cmd_stop_all, server=False),
        "all stopped",
    )
    return parser


def report(error, machine):
    if machine:
        print(render.as_json({"error": error.message, "status": error.status}), file=sys.stderr, flush=True)
    else:
        print(f"forkwatch ctl: {error.message}", file=sys.stderr, flush=True)


def main(argv=None):
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage mistake (1)
        return exc.code
    machine = getattr(args, "json", False)
    try:
        ctx = Context(Api(dashboard_url(args), instructor_token(args), args.timeout), machine)
        return args.handler(ctx, args) or OK
    except CtlError as exc:
        report(exc, machine)
        return exc.code
    except BrokenPipeError:  # `forkwatch ctl events -f | head`: the reader is gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
