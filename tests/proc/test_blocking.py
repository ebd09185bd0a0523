"""What a process is blocked in, read from the kernel for real processes blocked on purpose
in each call, and the sentence each reading makes."""

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from supervisor.core.doing import describe
from supervisor.proc import blocking
from supervisor.proc.descriptors import LISTENING, PIPE
from supervisor.proc.stat import read_stat
from tests.helpers import ROOT, child_env, wait_for
from tests.proc.blockers import blocked_in, first_line, reading_where

LISTENER = """
import socket
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
print(listener.getsockname()[1], flush=True)
"""
POLLS = ("poll", "ppoll")  # aarch64 has no poll: its C library calls ppoll


def test_accept_waits_for_a_client_on_the_listening_socket(blockers, reader):
    proc = blockers.start(LISTENER + "listener.accept()\n")
    port = int(first_line(proc))
    found = blocked_in(reader, proc.pid, "accept4", "accept")
    assert found.state == blocking.BLOCKED
    assert found.fd_target == f"listening socket :{port}"
    assert found.target.kind == LISTENING and found.target.port == port
    assert found.wchan  # the kernel function it sleeps in, e.g. inet_csk_accept
    assert describe(found) == f"waiting for a client in accept() on :{port}"
    named_only = blocking.BlockingReader(every_wchan=False).read(proc.pid)
    assert (named_only.syscall, named_only.wchan) == (found.syscall, None)  # the call is named: no wchan read


def _connected_child(blockers, recv_line):
    proc = blockers.start(LISTENER + "conn, _ = listener.accept()\n" + recv_line + "\n")
    port = int(first_line(proc))
    client = socket.create_connection(("127.0.0.1", port), timeout=10)
    return proc, client, f"127.0.0.1:{client.getsockname()[1]}"


def test_recv_on_a_connection_names_the_peer(blockers, reader):
    proc, client, peer = _connected_child(blockers, "conn.recv(25)")
    with client:
        found = blocked_in(reader, proc.pid, "recvfrom", "recvmsg")
        assert found.fd_target == f"connection with {peer}"
        assert found.target.peer == peer
        assert describe(found) == f"waiting in recv() for {peer}'s question"


def test_recv_with_a_timeout_is_a_poll_on_the_connection(blockers, reader):
    """Python waits for a socket with a timeout in poll(), then calls recv()."""
    proc, client, peer = _connected_child(blockers, "conn.settimeout(60)\nconn.recv(25)")
    with client:
        found = blocked_in(reader, proc.pid, *POLLS)
        assert found.fd_target == f"connection with {peer}"
        assert found.timeout_s == 60
        assert found.wants == "read"
        assert describe(found) == f"waiting in recv() for {peer}'s question"


def test_sleep_says_how_long_is_left(blockers, reader):
    began = time.monotonic()
    proc = blockers.start("import time\ntime.sleep(30)\n")
    found = blocked_in(reader, proc.pid, "clock_nanosleep", "nanosleep")
    elapsed = time.monotonic() - began
    assert 30 - elapsed - 0.1 <= found.left_s <= 30
    assert found.wchan
    shown = math.ceil(found.left_s)
    assert describe(found, delay_s=30) == f"sleeping in sleep() — {shown} s of its 30 s delay left"
    assert describe(found) == f"sleeping in sleep() — {shown} s left"
    later = reading_where(
        reader, proc.pid, lambda r: r.left_s is not None and r.left_s < found.left_s, "time to pass"
    )
    assert later.left_s < found.left_s  # it counts down


def test_serve_forever_polls_its_listening_socket_every_half_second(blockers, reader):
    proc = blockers.start(
        """
        import socketserver
        server = socketserver.TCPServer(("127.0.0.1", 0), socketserver.BaseRequestHandler)
        print(server.server_address[1], flush=True)
        server.serve_forever()
        """
    )
    port = int(first_line(proc))
    found = blocked_in(reader, proc.pid, *POLLS)
    assert found.fd_target == f"listening socket :{port}"
    assert found.timeout_s == 0.5
    assert describe(found) == "polling its listening socket (serve_forever, every 0.5 s)"


def test_select_with_a_timeout_polls(blockers, reader):
    proc = blockers.start(LISTENER + "import select\nwhile True: select.select([listener], [], [], 0.2)\n")
    port = int(first_line(proc))
    found = blocked_in(reader, proc.pid, "pselect6", "select")
    assert found.fd_target == f"listening socket :{port}"
    assert found.timeout_s == pytest.approx(0.2)
    assert describe(found) == "polling its listening socket (every 0.2 s)"


def test_wait_for_a_child(blockers, reader):
    proc = blockers.start(
        """
        import os, signal
        if os.fork() == 0:
            signal.pause()
        os.wait()
        """
    )
    found = blocked_in(reader, proc.pid, "wait4", "waitid")
    assert found.targets == ()
    assert describe(found) == "waiting in wait() for a child"


def test_input_reads_the_pipe_on_stdin(blockers, reader):
    proc = blockers.start("input()\n", stdin=subprocess.PIPE)
    found = blocked_in(reader, proc.pid, "read")
    assert found.fd == 0
    assert found.target.kind == PIPE
    assert found.fd_target == "stdin (pipe)"
    assert describe(found) == "waiting in input() on stdin"


def test_unix_listening_socket_is_named_by_its_path(blockers, reader, tmp_path):
    path = str(tmp_path / "clock.sock")
    proc = blockers.start(
        f"""
        import socket
        listener = socket.socket(socket.AF_UNIX)
        listener.bind({path!r})
        listener.listen()
        print("ready", flush=True)
        listener.accept()
        """
    )
    first_line(proc)
    found = blocked_in(reader, proc.pid, "accept4", "accept")
    assert found.fd_target == f"listening unix socket {path}"
    assert describe(found) == f"waiting for a client in accept() on {path}"


def test_a_busy_loop_is_running(blockers, reader):
    proc = blockers.start("while True: pass\n")
    found = reading_where(reader, proc.pid, lambda r: r.state == blocking.RUNNING, "the loop to be running")
    assert found.syscall is None
    assert describe(found) == "running"


def test_a_stopped_process_says_so_and_what_it_was_in(blockers, reader):
    proc = blockers.start("import time\ntime.sleep(30)\n")
    blocked_in(reader, proc.pid, "clock_nanosleep", "nanosleep")
    os.kill(proc.pid, signal.SIGSTOP)
    found = reading_where(reader, proc.pid, lambda r: r.state == blocking.STOPPED, "the stop to show")
    assert found.syscall in ("clock_nanosleep", "nanosleep")
    assert describe(found).startswith("stopped by a signal while sleeping in sleep()")


def test_a_zombie_is_a_zombie(reader):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        wait_for(lambda: getattr(read_stat(proc.pid), "state", None) == "Z", 10, "the zombie")
        found = reader.read(proc.pid)
        assert found.state == blocking.ZOMBIE
        assert describe(found) == "zombie: exited, nobody called wait()"
    finally:
        proc.wait()


def test_a_gone_process_reads_as_gone(reader):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    found = reader.read(proc.pid)
    assert found.state == blocking.GONE
    assert found.reason == "the process is gone"
    assert describe(found) == "gone (exited)"


UNPRIVILEGED_READER = """
import json, os, sys
from supervisor.core.doing import describe
from supervisor.proc.blocking import read_blocking
from tests.proc.blockers import as_nobody
if os.geteuid() == 0:
    as_nobody()
found = read_blocking(int(sys.argv[1]))
print(json.dumps({"uid": os.geteuid(), "state": found.state, "reason": found.reason, "doing": describe(found)}))
"""


def test_without_permission_the_reading_is_unknown_with_the_reason(blockers):
    """As root, the reader drops to `nobody` and reads a root process; as any other user,
    it reads PID 1, which is root's."""
    if os.geteuid() == 0:
        target = blockers.start("import time\ntime.sleep(30)\n").pid
        blocked_in(blocking.BlockingReader(), target, "clock_nanosleep", "nanosleep")
    else:
        target = 1
    done = subprocess.run(
        [sys.executable, "-c", UNPRIVILEGED_READER, str(target)],
        capture_output=True,
        env=child_env(),
        cwd=ROOT,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr.decode()
    seen = json.loads(done.stdout)
    assert seen["uid"] != 0
    assert seen["state"] == blocking.UNKNOWN
    assert seen["reason"] == "needs permission to read /proc/PID/syscall"
    assert seen["doing"] == "unknown (needs permission to read /proc/PID/syscall)"


def test_the_forking_clock_child_waits_for_its_clients_question(run_server, reader):
    server = run_server("forking_clock", "--port", "0", "--delay", "0")
    with server.connect() as client:
        peer = f"127.0.0.1:{client.getsockname()[1]}"
        child = wait_for(server.descendants, 10, "the forked child")[0]
        found = reading_where(
            reader, child.pid, lambda r: r.target and r.target.peer == peer, "the child to wait"
        )
        assert describe(found) == f"waiting in recv() for {peer}'s question"
        parent = describe(reader.read(server.proc.pid))
        assert parent in (
            f"waiting for a client in accept() on :{server.port}",
            "polling its listening socket (every 0.2 s)",
        )


def test_the_clock_server_polls_in_serve_forever_and_waits_once_with_once(run_server, reader):
    forever = run_server("clock", "--port", "0")
    found = blocked_in(reader, forever.proc.pid, *POLLS)
    assert describe(found) == "polling its listening socket (serve_forever, every 0.5 s)"
    once = run_server("clock", "--port", "0", "--once")
    found = reading_where(reader, once.proc.pid, lambda r: r.state == blocking.BLOCKED, "the server to block")
    assert describe(found) in (
        f"waiting for a client in accept() on :{once.port}",
        f"waiting for a client in poll() on :{once.port}",  # handle_request() polls with no timeout first
    )
