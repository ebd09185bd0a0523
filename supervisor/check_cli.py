"""`forkwatch check`: run an exercise's checks against a student's program from the shell,
with no dashboard running.

    forkwatch check swap.py --as swap --opt timeout=60
    forkwatch check --as swap --command 'python3 swap.py -p {port} -t {timeout}' --opt timeout=3
    forkwatch check secret.py --as secret_number --json

A FILE is run as `python FILE --port PORT`; `--command` runs anything else, with
placeholders {port} (required), {file}, {python}, {secret} and the exercise's options.
Exit code 0: every check passed; 1: a check failed; 2: the program could not be checked
(no such file, a bad option, it crashed at start or did not listen in time).
"""

import argparse
import json
import os
import shlex
import signal
import sys

from supervisor.core.checks import EXERCISES
from supervisor.core.checks.runner import START_TIMEOUT, check_program, command_for_file
from supervisor.proc.limits import Limits

CANNOT_RUN = 2
TRANSCRIPT_STEPS = 80


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="forkwatch check",
        description="Check a server against an exercise's rules with real clients.",
        epilog="Exit code 0: all checks passed; 1: a check failed; 2: it could not be checked.",
    )
    parser.add_argument("file", nargs="?", help="the program: run as `python FILE --port PORT`")
    parser.add_argument(
        "--as", dest="exercise", required=True, choices=list(EXERCISES), help="the exercise it solves"
    )
    parser.add_argument(
        "--command",
        help="how to run it instead, e.g. 'python3 {file} -p {port}'; placeholders: {port} (required), "
        "{file}, {python}, {secret}, and the options ({timeout}, {delay})",
    )
    parser.add_argument(
        "--opt",
        action="append",
        default=[],
        metavar="NAME=SECONDS",
        help="what the checks must know: timeout (swap's wait for a partner, default 60), "
        "delay (the forking clock's per-child wait, default 10)",
    )
    parser.add_argument(
        "--secret", help="the secret the program is given (default: a new random one each run)"
    )
    parser.add_argument(
        "--start-timeout",
        type=float,
        default=START_TIMEOUT,
        metavar="SECONDS",
        help=f"how long it may take to listen (default {START_TIMEOUT:g})",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--max-processes",
        type=int,
        default=Limits.processes,
        help=f"processes and threads it may add (default {Limits.processes}; not applied to root)",
    )
    parser.add_argument(
        "--memory-mb",
        type=int,
        default=Limits.memory_bytes >> 20,
        help="address space of each of its processes",
    )
    parser.add_argument(
        "--cpu-seconds", type=int, default=Limits.cpu_seconds, help="CPU time of each of its processes"
    )
    parser.add_argument(
        "--user",
        help="run it as this user (when forkwatch runs as root: the process limit never applies to root)",
    )
    return parser.parse_args(argv)


def build_command(args):
    """(command, extra placeholder values); ValueError with a sentence when it cannot be."""
    if args.file is not None and not os.path.isfile(args.file):
        raise ValueError(f"no such file: {args.file}")
    if args.command is None:
        if args.file is None:
            raise ValueError("give the program's FILE, or how to run it with --command")
        return command_for_file(args.file), {}
    command = shlex.split(args.command)
    return command, ({"file": os.path.abspath(args.file)} if args.file is not None else {})


def make_limits(args):
    if args.max_processes < 1 or args.memory_mb < 64 or args.cpu_seconds < 1:
        raise ValueError(
            "limits: --max-processes at least 1, --memory-mb at least 64, --cpu-seconds at least 1"
        )
    return Limits(args.max_processes, args.memory_mb << 20, args.cpu_seconds, user=args.user)


def parse_options(pairs):
    options = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--opt takes NAME=SECONDS, not {pair!r}")
        options[name] = value
    return options


def format_step(step):
    text = f"'{step['text']}'" if step["dir"] in ("sent", "received") else step["text"]
    return f"{step['ms']:>10.1f} ms  {step['who']:<4} {step['dir']:<9} {text}"


def print_result(result):
    if result.passed:
        print(f"PASS  {result.name}: {result.rule}", flush=True)
        return
    print(f"{'FAIL' if result.passed is False else 'SKIP'}  {result.name}: {result.rule}")
    print(f"      fault: {result.fault}")
    if result.transcript:
        print("      transcript:")
        for step in result.transcript[:TRANSCRIPT_STEPS]:
            print("      " + format_step(step))
        if len(result.transcript) > TRANSCRIPT_STEPS:
            print(f"      … and {len(result.transcript) - TRANSCRIPT_STEPS} more steps (--json has them all)")
    sys.stdout.flush()


def print_summary(report):
    if report.error is not None:
        print(f"could not run: {report.error}")
        if report.output:
            print("its last output:")
            for line in report.output:
                print(f"  {line}")
        return
    failed = sum(1 for result in report.results if not result.passed)
    passed = len(report.results) - failed
    peak = report.peak_processes
    print(f"{passed} passed, {failed} failed; at most {peak} process{'' if peak == 1 else 'es'} at once")


def refuse(message, as_json):
    if as_json:
        print(json.dumps({"ok": False, "exit_code": CANNOT_RUN, "error": message}))
    else:
        print(f"forkwatch check: {message}", file=sys.stderr)
    return CANNOT_RUN


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        limits = make_limits(args)
        command, values = build_command(args)
        options = parse_options(args.opt)
    except ValueError as exc:
        return refuse(str(exc), args.json)

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    printed = []

    def print_as_it_comes(result):
        try:
            if not printed:
                print(f"checking {args.file or shlex.join(command)} as {args.exercise}")
            printed.append(result)
            print_result(result)
        except BrokenPipeError:  # the reader left (| head): go on checking, print no more
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

    try:
        report = check_program(
            args.exercise,
            command,
            options=options,
            secret=args.secret,
            limits=limits,
            start_timeout=args.start_timeout,
            on_result=None if args.json else print_as_it_comes,
            values=values,
        )
    except ValueError as exc:
        return refuse(str(exc), args.json)
    except KeyboardInterrupt:
        print("forkwatch check: interrupted; the program was stopped", file=sys.stderr)
        return CANNOT_RUN
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print_summary(report)
    return report.exit_code
