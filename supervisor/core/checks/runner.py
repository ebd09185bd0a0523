"""Checks a program as a student hands it in: starts it on a free port with a secret, limits
and a working folder of its own, waits until its tree listens on that port (seen by the OS
floor, never by a probe connection), runs the exercise's checks against it — a fresh start
where a check needs one — and stops its whole tree.

The command is a list; in each part `{port}` (required) becomes the port, `{secret}` the
secret, `{python}` this Python, and `{timeout}`, `{delay}` … the exercise's options. The
program also finds the port and the secret in its environment: FORKWATCH_PORT and
FORKWATCH_SECRET (the way forkwatch hands the lecture's games their secret).
"""

import dataclasses
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

from supervisor.core.catalog import PROJECT_ROOT
from supervisor.core.checks import base, exercise
from supervisor.core.checks.tree import ProgramTree
from supervisor.core.exits import describe_exit
from supervisor.core.process import SECRET_ENV
from supervisor.proc import limits as program_limits
from supervisor.proc.signals import kill_tree_and_wait
from supervisor.proc.stat import create_time_of

HOST = "127.0.0.1"
PORT_ENV = "FORKWATCH_PORT"
START_TIMEOUT = 10.0
OUTPUT_LINES = 15
OUTPUT_TAIL_BYTES = 16 * 1024
SAMPLE_EVERY = 0.1
PLACEHOLDER = re.compile(r"\{(\w+)\}")


class CannotRun(Exception):
    """The program could not be checked: it did not start, or did not listen in time."""


@dataclasses.dataclass
class Report:
    """All a check run found: each check's result, or why the program could not be checked,
    with the last lines it printed and the most processes it had at once."""

    exercise: str
    command: list
    results: list = dataclasses.field(default_factory=list)
    error: str | None = None
    output: list = dataclasses.field(default_factory=list)
    peak_processes: int = 0
    limits: dict = dataclasses.field(default_factory=dict)

    @property
    def exit_code(self):
        """0 every check passed, 1 a check failed, 2 the program could not be checked."""
        if self.error is not None:
            return 2
        return 0 if self.results and all(result.passed for result in self.results) else 1

    def as_dict(self):
        return {
            "exercise": self.exercise,
            "command": self.command,
            "ok": self.exit_code == 0,
            "exit_code": self.exit_code,
            "error": self.error,
            "checks": [result.as_dict() for result in self.results],
            "output": self.output,
            "peak_processes": self.peak_processes,
            "limits": self.limits,
        }


def command_for_file(path):
    """The command for a student's file: it takes the port as `--port PORT`."""
    return [sys.executable, os.path.abspath(path), "--port", "{port}"]


def fill(command, values):
    """The command with each {name} replaced by values[name]; ValueError for a name it
    does not know, or a command without {port}."""
    if not command or not any("{port}" in part for part in command):
        raise ValueError("the command must contain {port}: where the program is told its port")

    def one(match):
        name = match.group(1)
        if name not in values:
            known = ", ".join(f"{{{key}}}" for key in values)
            raise ValueError(f"unknown placeholder {{{name}}} in the command (known: {known})")
        return values[name]

    return [PLACEHOLDER.sub(one, part) for part in command]


def free_port():
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def shown_number(value):
    return f"{value:g}"


def program_env(secret, extra):
    env = {key: value for key, value in os.environ.items() if not key.startswith("FORKWATCH_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = PROJECT_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if secret is not None:
        env[SECRET_ENV] = secret
    env.update(extra or {})
    return env


class Program:
    """One start of the program: its own session, its limits, its console in a file."""

    def __init__(self, argv, env, workdir, log_path, limits, port):
        self.port = port
        self.log_path = log_path
        self.stopped = False
        self._log = open(log_path, "wb")
        try:
            self.popen = subprocess.Popen(
                program_limits.wrap(argv, limits),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                env=env,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            self._log.close()
            raise CannotRun(f"could not start {argv[0]}: {exc.strerror or exc}") from exc
        self.created = create_time_of(self.popen.pid)
        self.tree = ProgramTree(self.popen.pid, port)

    def exited(self):
        """None while it runs, else how it ended."""
        code = self.popen.poll()
        return None if code is None else describe_exit(code)

    def wait_listening(self, timeout):
        deadline = time.monotonic() + timeout
        while self.tree.listener() is None:
            died = self.exited()
            if died is not None:
                raise CannotRun(f"it {died} before it listened on port {self.port}")
            if time.monotonic() >= deadline:
                raise CannotRun(
                    f"it did not listen on port {self.port} within {timeout:g} s (does it take its "
                    "port from the command line? see --command)"
                )
            time.sleep(0.01)

    def stop(self):
        """Kill its group, then whatever is left of its session and tree, and wait."""
        self.stopped = True
        pid = self.popen.pid
        kill_tree_and_wait({pid: self.created}, timeout=10.0)
        self.popen.wait()
        self._log.close()

    def last_lines(self, count=OUTPUT_LINES):
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(max(0, os.path.getsize(self.log_path) - OUTPUT_TAIL_BYTES))
                text = handle.read().decode("utf-8", "replace")
        except OSError:
            return []
        return [line[:300] for line in text.splitlines() if line.strip()][-count:]


class Starts:
    """The starts of one program during one run; `fresh()` is what base.run_exercise calls."""

    def __init__(self, command, values, env, folder, limits, start_timeout, options, secret):
        self.command = command
        self.values = values
        self.env = env
        self.folder = folder
        self.workdir = os.path.join(folder, "work")
        os.mkdir(self.workdir)
        uid, gid = limits.account()
        if uid != os.getuid():
            os.chown(self.workdir, uid, gid)  # its folder is its own
        self.limits = limits
        self.start_timeout = start_timeout
        self.options = options
        self.secret = secret
        self.current = None
        self.count = 0

    def fresh(self):
        self.stop()
        self.count += 1
        port = free_port()
        argv = fill(self.command, {**self.values, "port": str(port)})
        log_path = os.path.join(self.folder, f"console-{self.count}.log")
        env = {**self.env, PORT_ENV: str(port)}
        self.current = Program(argv, env, self.workdir, log_path, self.limits, port)
        self.current.wait_listening(self.start_timeout)
        return base.Target(HOST, port, self.options, self.secret, self.current.tree, self.current.exited)

    def stop(self):
        if self.current is not None and not self.current.stopped:
            self.current.stop()


class PeakSampler:
    """Counts the program's live processes every SAMPLE_EVERY s; keeps the most seen."""

    def __init__(self, starts):
        self.starts = starts
        self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="check-sampler")

    def _run(self):
        while not self._done.wait(SAMPLE_EVERY):
            self.sample()

    def sample(self):
        program = self.starts.current
        if program is not None and not program.stopped:
            self.peak = max(self.peak, program.tree.count())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()


def check_program(
    exercise_name,
    command,
    *,
    options=None,
    secret=None,
    limits=None,
    start_timeout=START_TIMEOUT,
    on_result=None,
    env=None,
    values=None,
):
    """Run the checks of `exercise_name` against `command`; returns a Report.

    ValueError (before anything starts) for an unknown exercise, option, placeholder or a
    malformed secret. `on_result(CheckResult)` is called as each check ends; `values` adds
    placeholders, `env` variables for the program."""
    chosen = exercise(exercise_name)
    option_values = chosen.option_values(options)
    secret = chosen.secret_value(secret)
    limits = limits or program_limits.Limits()
    limits.account()
    known = {"python": sys.executable, **{name: shown_number(v) for name, v in option_values.items()}}
    if secret is not None:
        known["secret"] = secret
    known.update(values or {})
    fill(command, {**known, "port": "0"})
    report = Report(chosen.name, list(command), limits=limits.as_dict())

    def record(result):
        sampler.sample()  # a check shorter than SAMPLE_EVERY is counted too
        report.results.append(result)
        if on_result is not None:
            on_result(result)

    with tempfile.TemporaryDirectory(prefix="forkwatch-check-", ignore_cleanup_errors=True) as folder:
        starts = Starts(
            command, known, program_env(secret, env), folder, limits, start_timeout, option_values, secret
        )
        with PeakSampler(starts) as sampler:
            try:
                base.run_exercise(chosen, starts.fresh, record)
            except CannotRun as exc:
                report.error = str(exc)
            finally:
                starts.stop()
        report.peak_processes = sampler.peak
        if starts.current is not None:
            report.output = starts.current.last_lines()
    return report
