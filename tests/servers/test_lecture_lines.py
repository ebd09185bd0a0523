"""Each lecture program's console against the slides: the exact lines, in order, each at
its moment (a client's lines once it connected, the shutdown lines once Ctrl-C came)."""

import contextlib
import re
import signal
import socket
import subprocess
import sys

import psutil
import pytest

from tests.helpers import ADDRESS_LINE, ROOT, child_env, get, http_get, wait_for
from tests.servers.lecture_support import (
    CTIME,
    CTIME_TEXT,
    PEER,
    assert_console,
    full_output,
    recv_reply_after,
    run_client,
    signal_and_wait,
    wait_blocked_in_accept,
)

# --- clockserver and clockclient --------------------------------------------------------------


def test_clock_prints_the_slides_lines_then_ctrl_c_closes_it(run_server):
    server = run_server("clock", "--port", "0")
    start = [ADDRESS_LINE, f"server is listening to {server.port}", "press ctrl c to stop server"]
    wait_for(lambda: len(server.output()) >= 3, what="the clock's start lines")
    assert_console(server.output(), start)  # nothing more before a client came
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        port = sock.getsockname()[1]
        answer = recv_reply_after(sock)
    client_lines = [
        f"connected at ('127.0.0.1', {port})",
        'read "What is the time?        " from client',
        f'writing "{answer.rstrip()}" to client',
    ]
    wait_for(lambda: len(server.output()) >= 6, what="the handler's lines")
    assert_console(server.output(), start + client_lines)
    assert signal_and_wait(server) == 0
    assert_console(full_output(server), start + client_lines + [" ctrl c pressed, closing server"])


def test_clock_sigterm_is_a_clean_stop_in_its_own_words(run_server):
    server = run_server("clock", "--port", "0")
    wait_for(lambda: len(server.output()) >= 3, what="the clock's start lines")
    assert signal_and_wait(server, signal.SIGTERM) == 0
    assert full_output(server)[3:] == ["SIGTERM received, closing server"]


def test_clock_once_serves_one_request_and_exits_0(run_server):
    server = run_server("clock", "--port", "0", "--once")
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        assert CTIME.fullmatch(recv_reply_after(sock).rstrip("\n"))
    assert server.proc.wait(10) == 0
    assert_console(
        full_output(server),
        [
            ADDRESS_LINE,
            f"server is listening to {server.port}",
            "press ctrl c to stop server",
            re.compile(rf"connected at {PEER}"),
            'read "What is the time?        " from client',
            re.compile(rf'writing "{CTIME_TEXT}" to client'),
            "served one client, exiting",
        ],
    )


@pytest.mark.parametrize(
    "transport",
    [["--udp"], ["--unix", "{path}"], ["--unix", "{path}", "--udp"]],
    ids=["udp", "unix", "unix-udp"],
)
def test_clock_client_says_it_is_connected_then_the_time(run_server, tmp_path, transport):
    args = [arg.format(path=tmp_path / "clock.sock") for arg in transport]
    server = run_server("clock", *(args if "--unix" in args else [*args, "--port", "0"]))
    where = server.unix_path if "--unix" in args else str(server.port)
    wait_for(lambda: len(server.output()) >= 3, what="the clock's start lines")
    assert server.output()[1] == f"server is listening to {where}"
    client = run_client("clock_client", *args, *([] if "--unix" in args else ["--port", where]))
    assert client.returncode == 0, client.stderr
    assert_console(client.stdout.decode().splitlines(), ["client is connected", CTIME])


def test_clock_client_over_tcp_and_its_exit_code(run_server):
    server = run_server("clock", "--port", "0", "--threading")
    client = run_client("clock_client", "--port", str(server.port))
    assert client.returncode == 0
    assert_console(client.stdout.decode().splitlines(), ["client is connected", CTIME])


def test_clock_help_names_the_unix_datagram_variant_and_the_slides_port():
    text = run_client("clock", "--help").stdout.decode()
    assert "Unix datagram socket" in text and "(default 12091)" in text


# --- fork.py -----------------------------------------------------------------------------------


def test_fork_demo_forks_at_once_then_on_each_line_and_q_ends_it_with_0(run_server):
    demo = run_server("fork_demo", stdin=True, ready=False)

    def hellos():
        out = demo.output()
        return out[0], sorted(out[1:])  # parent and child print in either order

    prompt = "press Enter to fork a child, q to quit"
    wait_for(lambda: len(demo.output()) >= 3, what="the first fork, before any input")
    first = psutil.Process(demo.proc.pid).children()
    assert len(first) == 1 and hellos() == (
        prompt,
        sorted([f"hello from parent {demo.proc.pid} {first[0].pid}", f"hello from child {first[0].pid}"]),
    )
    demo.proc.stdin.write(b"again\n")
    demo.proc.stdin.flush()
    wait_for(lambda: len(demo.output()) >= 5, what="a second fork after a line")
    second = [p.pid for p in psutil.Process(demo.proc.pid).children() if p.pid != first[0].pid]
    assert len(second) == 1
    assert sorted(demo.output()[3:]) == sorted(
        [f"hello from parent {demo.proc.pid} {second[0]}", f"hello from child {second[0]}"]
    )
    demo.proc.stdin.write(b"q\n")
    demo.proc.stdin.flush()
    assert demo.proc.wait(10) == 0
    assert len(full_output(demo)) == 5  # q does not fork


def test_fork_demo_end_of_input_ends_it_with_0():
    result = subprocess.run(
        [sys.executable, "-m", "servers.fork_demo"],
        input=b"",
        capture_output=True,
        timeout=20,
        env=child_env(),
        cwd=ROOT,
    )
    assert result.returncode == 0
    assert len(result.stdout.decode().splitlines()) == 3  # the hint, and the first fork's two hellos


# --- the forking server ------------------------------------------------------------------------


def starting(server, prefix):
    """How many console lines start with `prefix`."""
    return sum(line.startswith(prefix) for line in server.output())


PARENT_LINE = re.compile(r"server connected at .*|appending PID \d+")


def test_forking_server_parent_and_child_lines_as_on_the_slides(run_server):
    server = run_server("forking_clock", "--port", "0", "--delay", "0.5")
    start = [ADDRESS_LINE, f"server is listening to {server.port}"]
    wait_blocked_in_accept(server.proc.pid)
    assert_console(server.output(), start)  # no child line before a client came
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        port = sock.getsockname()[1]
        child = wait_for(lambda: server.descendants(), what="the forked child")[0]
        server.wait_line(r"^client is blocked for 0\.5 seconds \.\.\.$")
        answer = recv_reply_after(sock).rstrip("\n")
    server.wait_line(r"^closing client socket, exiting child process$")
    server.wait_line(r"^appending PID")
    parent = [line for line in server.output()[2:] if PARENT_LINE.fullmatch(line)]
    children = [line for line in server.output()[2:] if not PARENT_LINE.fullmatch(line)]
    assert_console(parent, [f"server connected at ('127.0.0.1', {port})", f"appending PID {child.pid}"])
    assert_console(
        children,
        [
            "client is blocked for 0.5 seconds ...",
            "handling a client ...",
            'received "What is the time?        " from client',
            f'sending "{answer}" to client',
            "closing client socket, exiting child process",
        ],
    )


@pytest.mark.parametrize("delay, said", [("10", "ten seconds"), ("2", "2 seconds"), ("1", "1 second")])
def test_forking_server_child_says_its_real_delay(run_server, delay, said):
    server = run_server("forking_clock", "--port", "0", "--delay", delay)
    with socket.create_connection((server.host, server.port), timeout=10):
        server.wait_line(rf"^client is blocked for {said} \.\.\.$")


def test_forking_server_ctrl_c_runs_kill_processes_with_its_lines(run_server):
    server = run_server("forking_clock", "--port", "0", "--delay", "30")
    with contextlib.ExitStack() as stack:
        holders = []
        for count in (1, 2):  # one at a time, so the order of the PIDs is known
            holders.append(
                stack.enter_context(socket.create_connection((server.host, server.port), timeout=10))
            )
            wait_for(
                lambda count=count: (
                    starting(server, "appending PID") == starting(server, "client is blocked") == count
                ),
                what=f"{count} children appended, each blocked",
            )
        pids = [int(line.split()[2]) for line in server.output() if line.startswith("appending PID")]
        children = server.descendants()
        assert sorted(pids) == sorted(p.pid for p in children) and len(pids) == 2
        wait_blocked_in_accept(server.proc.pid)
        assert not any("ctrl c" in line or "killing" in line for line in server.output())
        before = len(server.output())
        assert signal_and_wait(server) == 0
        wait_for(lambda: not any(p.is_running() for p in children), 5, "the children gone")
        assert [sock.recv(10) for sock in holders] == [b"", b""]  # each client's child died
    assert_console(
        full_output(server)[before:],
        [
            "ctrl c pressed, closing server",
            f"active processes : [{pids[0]}, {pids[1]}]",
            f"-> killing process {pids[0]}",
            f"-> killing process {pids[1]}",
        ],
    )


def test_forking_server_ctrl_c_with_no_children_and_reaping_on(run_server):
    server = run_server("forking_clock", "--port", "0", "--delay", "0", "--reap")
    wait_blocked_in_accept(server.proc.pid)
    assert signal_and_wait(server) == 0
    assert full_output(server)[2:] == ["ctrl c pressed, closing server", "active processes : []"]


def test_forking_server_sigterm_stops_it_the_same_way_in_its_own_words(run_server):
    server = run_server("forking_clock", "--port", "0", "--delay", "30")
    with socket.create_connection((server.host, server.port), timeout=10):
        child = wait_for(lambda: server.descendants(), what="a child")[0]
        wait_for(lambda: starting(server, "appending PID") == starting(server, "client is blocked") == 1)
        wait_blocked_in_accept(server.proc.pid)
        assert signal_and_wait(server, signal.SIGTERM) == 0
    assert full_output(server)[-3:] == [
        "SIGTERM received, closing server",
        f"active processes : [{child.pid}]",
        f"-> killing process {child.pid}",
    ]
    assert not child.is_running()


def test_forking_server_ctrl_c_to_a_child_does_not_run_the_parents_shutdown(run_server):
    server = run_server("forking_clock", "--port", "0", "--delay", "30")
    with socket.create_connection((server.host, server.port), timeout=10):
        child = wait_for(lambda: server.descendants(), what="a child")[0]
        server.wait_line(r"^client is blocked")
        child.send_signal(signal.SIGINT)
        wait_for(lambda: child.status() == psutil.STATUS_ZOMBIE, what="the child ended by SIGINT")
    assert server.proc.poll() is None
    assert not any("ctrl c" in line or "killing" in line for line in server.output())


# --- clockforkclient ---------------------------------------------------------------------------


def test_fork_client_lines_each_round_and_exit_0(run_server):
    server = run_server("forking_clock", "--port", "0", "--delay", "0", "--reap")
    result = run_client(
        "fork_client", "--port", str(server.port), "--rounds", "3", "--min", "0", "--max", "0"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    sleeps = "client sleeps for 0 seconds"
    assert_console(
        lines,
        ["client is connected", re.compile(rf"connected from {PEER}"), CTIME, sleeps, CTIME, sleeps, CTIME],
    )
    peer = lines[1].removeprefix("connected from ")
    assert server.wait_line(r"^server connected at") == f"server connected at {peer}"


def test_fork_client_ctrl_c_while_it_sleeps_ends_it_with_0(run_server):
    server = run_server("forking_clock", "--port", "0", "--delay", "0", "--reap")
    client = run_server("fork_client", "--port", str(server.port), "--min", "30", "--max", "30", ready=False)
    client.wait_line(r"^client sleeps for 30 seconds$")
    assert signal_and_wait(client) == 0


# --- ourwebserver ------------------------------------------------------------------------------


def test_web_server_lines_and_request_log_on_stdout_then_ctrl_c():
    proc = subprocess.Popen(
        [sys.executable, "-m", "servers.web", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(),
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        first = proc.stdout.readline().decode().rstrip("\n")
        port = int(ADDRESS_LINE.fullmatch(first).group(3))
        assert get("127.0.0.1", port, "/")[0] == 200
        assert get("127.0.0.1", port, "/test")[0] == 404
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        request = r'127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4} \d\d:\d\d:\d\d\] "GET %s HTTP/1\.0" %d -'
        assert_console(
            proc.stdout.read().decode().splitlines(),
            [
                "welcome to our web server",
                "press ctrl c to stop server",
                re.compile(request % ("/", 200)),  # BaseHTTPServer's own line, logged as it answers
                re.compile(request % ("/test", 404)),
                " ctrl c pressed, shutting down",
            ],
        )
        assert proc.stderr.read() == b""
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_web_server_listens_on_8000_as_on_the_slides():
    assert "(default 8000)" in run_client("web", "--help").stdout.decode()


def test_web_server_request_line_escapes_control_characters(run_server):
    server = run_server("web", "--port", "0")
    status, _, _ = http_get(server.host, server.port, b"GET /\x1b[31mred HTTP/1.0\r\n\r\n")
    assert status == 404
    line = server.wait_line(r'"GET /')
    assert '"GET /\\x1b[31mred HTTP/1.0" 404 -' in line and "\x1b" not in line
