"""A Stop the moment a server's address line is out is handled as a Stop: each server
catches SIGTERM before it prints that line, so it says its shutdown line and exits 0
rather than dying of the signal (a supervisor starts it, reads the line, and may stop it
at once).

Made certain, not hoped for: the server's stdout is a pipe already full, so the server is
blocked writing its address line when SIGTERM comes; then the pipe is drained."""

import fcntl
import os
import signal
import subprocess
import sys

import pytest

from supervisor.proc.blocking import read_blocking
from tests.helpers import ROOT, child_env, wait_for

PIPE_SIZE = 4096
STOP_LINES = {
    "clock": "SIGTERM received, closing server",
    "forking_clock": "SIGTERM received, closing server",
    "web": "SIGTERM received, shutting down",
    "swap": "server stopped",
    "secret_number": "server stopped",
    "guess_word": "server stopped",
}


def full_pipe():
    """(read end, write end) of a pipe of PIPE_SIZE bytes, already full of filler."""
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    os.set_blocking(write_end, False)
    try:
        while True:
            os.write(write_end, b"#" * PIPE_SIZE)
    except BlockingIOError:
        pass
    os.set_blocking(write_end, True)
    return read_end, write_end


def drain(read_end):
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    return b"".join(chunks).lstrip(b"#").decode()


@pytest.mark.parametrize("name", sorted(STOP_LINES))
def test_a_stop_while_the_address_line_is_being_written_is_a_clean_stop(name):
    read_end, write_end = full_pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", f"servers.{name}", "--port", "0"],
            stdout=write_end,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=child_env(),
        )
    finally:
        os.close(write_end)
    try:
        wait_for(
            lambda: (reading := read_blocking(proc.pid)) is not None and reading.syscall == "write",
            10.0,
            f"{name} blocked writing its address line to the full pipe",
        )
        proc.send_signal(signal.SIGTERM)
        output = drain(read_end)  # lets its writes through; ends when it has exited
        assert proc.wait(10) == 0, output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(read_end)
    lines = output.splitlines()
    assert lines[0].startswith("listening on "), lines
    assert STOP_LINES[name] in lines, lines
