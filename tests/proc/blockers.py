"""Processes blocked on purpose in one system call each, and waiting until the kernel
says they are there."""

import os
import pwd
import select
import subprocess
import sys
import textwrap

from bench.helpers import end_group
from tests.helpers import ROOT, child_env, wait_for

NOBODY = pwd.getpwnam("nobody")


class Blockers:
    """`python -c CODE` children, each in its own session; `close` kills every group."""

    def __init__(self):
        self.started = []

    def start(self, code, stdin=subprocess.DEVNULL):
        proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code)],
            stdin=stdin,
            stdout=subprocess.PIPE,
            env=child_env(),
            cwd=ROOT,
            start_new_session=True,
        )
        self.started.append(proc)
        return proc

    def close(self):
        for proc in self.started:
            end_group(proc.pid)
            proc.wait(10)
            proc.stdout.close()
            if proc.stdin:
                proc.stdin.close()


def first_line(proc, timeout=10.0):
    """The child's first line of output (it says what it set up, e.g. its port)."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"process {proc.pid} printed nothing within {timeout} s"
    line = proc.stdout.readline().decode().strip()
    assert line, f"process {proc.pid} exited with {proc.wait(5)} before saying anything"
    return line


def reading_where(reader, pid, check, what, timeout=10.0):
    """Read pid until check(reading) holds; fail with the last reading seen."""
    seen = []

    def matches():
        seen.append(reader.read(pid))
        return seen[-1] if check(seen[-1]) else None

    try:
        return wait_for(matches, timeout, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last reading: {seen[-1] if seen else None}") from None


def blocked_in(reader, pid, *calls, timeout=10.0):
    """The first reading of pid that shows it in one of `calls`."""
    return reading_where(
        reader, pid, lambda r: r.syscall in calls, f"process {pid} to block in {calls}", timeout
    )


def as_nobody():
    """Drop this (root) process to the unprivileged user `nobody` for good."""
    os.setgroups([])
    os.setgid(NOBODY.pw_gid)
    os.setuid(NOBODY.pw_uid)
