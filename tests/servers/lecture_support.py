"""Helpers for the lecture programs' tests: console lines against the slides, Ctrl-C, and
what a process is blocked in."""

import os
import platform
import re
import signal
import socket
import subprocess
import sys

from tests.helpers import QUESTION, ROOT, ask, child_env, wait_for

CTIME_TEXT = (
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d "
    r"\d\d:\d\d:\d\d \d{4}"
)
CTIME = re.compile(CTIME_TEXT)
PEER = r"\('127\.0\.0\.1', \d+\)"

# accept4(2) by machine, as /proc/PID/syscall numbers it (unistd.h of each architecture).
ACCEPT4 = {"x86_64": 288, "aarch64": 242}


def assert_console(lines, expected):
    """Each line equals its expected string, or fully matches its compiled pattern; the
    same number of lines, in the same order."""
    shown = "\n".join(lines)
    assert len(lines) == len(expected), f"expected {len(expected)} lines, got {len(lines)}:\n{shown}"
    for index, (line, want) in enumerate(zip(lines, expected, strict=True)):
        if isinstance(want, re.Pattern):
            assert want.fullmatch(line), f"line {index} {line!r} does not match {want.pattern!r}:\n{shown}"
        else:
            assert line == want, f"line {index} is {line!r}, expected {want!r}:\n{shown}"


def run_client(module, *args, timeout=30):
    return subprocess.run(
        [sys.executable, "-m", f"servers.{module}", *args],
        capture_output=True,
        timeout=timeout,
        env=child_env(),
        cwd=ROOT,
    )


def signal_and_wait(server, sig=signal.SIGINT, timeout=10.0):
    """Send `sig` to the server process alone, as a terminal's Ctrl-C reaches the
    foreground program; returns its exit code."""
    os.kill(server.proc.pid, sig)
    return server.proc.wait(timeout)


def full_output(server):
    """The whole console of a server that has exited (its reader drained to the end)."""
    server.stop()
    return server.output()


def ask_and_close(server):
    """One client: the question, the reply line, then close. Returns (local port, reply)."""
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        port = sock.getsockname()[1]
        return port, recv_reply_after(sock)


def recv_reply_after(sock, question=QUESTION):
    """Ask, then read one reply line with its newline (less if the server closed first)."""
    return ask(sock, question, limit=256).decode()


def syscall_number(pid):
    """The system call `pid` is blocked in (its number), or None while it runs."""
    with open(f"/proc/{pid}/syscall") as handle:
        first = handle.read().split()[0]
    return None if first == "running" else int(first)


def accept4_number():
    machine = platform.machine()
    assert machine in ACCEPT4, f"no accept4 number known for {machine}: add it to ACCEPT4"
    return ACCEPT4[machine]


def wait_blocked_in_accept(pid, timeout=10.0):
    number = accept4_number()
    wait_for(lambda: syscall_number(pid) == number, timeout, f"PID {pid} blocked in accept4 ({number})")
