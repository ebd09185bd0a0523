"""The lecture's programs over real sockets on 127.0.0.1, run as real subprocesses.

One section a program, in the lecture's order; at about 560 lines it is longer than the
other test modules because it covers all nine programs and each one's fixes.
"""

import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
import time

import psutil
import pytest

from tests.helpers import (
    CTIME,
    QUESTION,
    ROOT,
    child_env,
    get,
    http_get,
    recv_all,
    recv_line,
    send_line,
    wait_for,
)
from tests.helpers import ask as ask_bytes


def run_module(module, *args, timeout=20, input=None):
    return subprocess.run(
        [sys.executable, "-m", f"servers.{module}", *args],
        capture_output=True,
        timeout=timeout,
        input=input,
        env=child_env(),
        cwd=ROOT,
    )


def ask(sock, question=QUESTION):
    return ask_bytes(sock, question).decode()


# --- every program ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "module",
    [
        "clock",
        "clock_client",
        "fork_demo",
        "forking_clock",
        "fork_client",
        "web",
        "swap",
        "secret_number",
        "guess_word",
    ],
)
def test_every_program_explains_itself(module):
    result = run_module(module, "--help")
    assert result.returncode == 0
    assert b"usage:" in result.stdout


# --- clock -----------------------------------------------------------------------------


def test_clock_answers_ctime_and_prints_the_lecture_lines(run_server):
    server = run_server("clock", "--port", "0")
    wait_for(lambda: len(server.output()) >= 2, what="the line after the address line")
    assert server.output()[1] == f"server is listening to {server.port}"
    with server.connect() as sock:
        answer = ask(sock)
        assert sock.recv(10) == b""  # the server closed: one question, one answer
    assert len(answer) == 25 and answer.endswith("\n")
    assert CTIME.match(answer.rstrip("\n"))
    server.wait_line(r"^connected at \('127\.0\.0\.1', \d+\)$")
    server.wait_line(r'^read "What is the time\?        " from client$')
    server.wait_line(r'^writing "' + CTIME.pattern[1:-1] + r'" to client$')


def test_clock_reads_a_question_that_arrives_in_pieces(run_server):
    server = run_server("clock", "--port", "0")
    with server.connect() as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for piece in (QUESTION[:3], QUESTION[3:11], QUESTION[11:24]):
            sock.sendall(piece)
            server.wait_line(r"^connected at")
        sock.sendall(QUESTION[24:])
        answer = recv_all(sock).decode()
    assert CTIME.match(answer.rstrip("\n"))
    server.wait_line(r'^read "What is the time\?        " from client$')


def test_clock_short_question_gets_an_error_and_the_server_goes_on(run_server):
    server = run_server("clock", "--port", "0")
    with server.connect() as sock:
        sock.sendall(b"short")
        sock.shutdown(socket.SHUT_WR)
        assert recv_all(sock) == b"error: short question, 5 of 25 bytes\n"
    with server.connect() as sock:
        assert CTIME.match(ask(sock).rstrip("\n"))


def test_clock_long_and_non_utf8_questions(run_server):
    server = run_server("clock", "--port", "0")
    with server.connect() as sock:
        sock.sendall(b"\xff\xfe\x80" * 10 + b"x" * 100_000)
        sock.shutdown(socket.SHUT_WR)
        answer = recv_all(sock).decode()
    assert CTIME.match(answer.rstrip("\n"))
    server.wait_line(r'^read "\\xff\\xfe\\x80')


def test_clock_client_that_disconnects_mid_question(run_server):
    server = run_server("clock", "--port", "0")
    sock = server.connect()
    sock.sendall(b"What is")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()  # abortive close: a reset
    server.wait_line(r"short question|client gone")
    with server.connect() as sock:
        assert CTIME.match(ask(sock).rstrip("\n"))


def test_clock_client_program_prints_the_time(run_server):
    server = run_server("clock", "--port", "0", "--threading")
    result = run_module("clock_client", "--port", str(server.port))
    assert result.returncode == 0
    assert CTIME.match(result.stdout.decode().splitlines()[-1])


def test_clock_client_reports_a_refused_connection():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    result = run_module("clock_client", "--port", str(free_port))
    assert result.returncode == 1
    assert b"cannot ask the time" in result.stderr


def test_clock_over_udp(run_server):
    server = run_server("clock", "--udp", "--port", "0")
    assert server.output()[0].startswith("listening on udp://127.0.0.1:")
    result = run_module("clock_client", "--udp", "--port", str(server.port))
    assert CTIME.match(result.stdout.decode().splitlines()[-1])


@pytest.mark.parametrize("udp", [False, True])
def test_clock_over_unix_sockets(run_server, tmp_path, udp):
    path = str(tmp_path / "clock.sock")
    server = run_server("clock", "--unix", path, *(["--udp"] if udp else []))
    assert server.unix_path == path
    result = run_module("clock_client", "--unix", path, *(["--udp"] if udp else []))
    assert CTIME.match(result.stdout.decode().splitlines()[-1]), result
    server.stop()
    assert not os.path.exists(path)


def test_clock_unix_refuses_to_replace_a_regular_file(tmp_path):
    path = tmp_path / "not-a-socket"
    path.write_text("keep me")
    result = run_module("clock", "--unix", str(path))
    assert result.returncode == 1
    assert b"is not a socket" in result.stderr
    assert path.read_text() == "keep me"


def test_clock_once_serves_one_client_then_exits(run_server):
    server = run_server("clock", "--port", "0", "--once")
    with server.connect() as sock:
        assert CTIME.match(ask(sock).rstrip("\n"))
    assert server.proc.wait(10) == 0
    assert "served one client, exiting" in server.output()


def test_clock_port_in_use_is_a_clear_error(run_server):
    first = run_server("clock", "--port", "0")
    result = run_module("clock", "--port", str(first.port))
    assert result.returncode == 1
    assert b"cannot listen" in result.stderr


def test_clock_threading_serves_clients_at_once(run_server):
    server = run_server("clock", "--port", "0", "--threading")
    slow = server.connect()  # holds a handler thread, asking nothing
    slow.sendall(b"What")
    with server.connect() as sock:
        assert CTIME.match(ask(sock).rstrip("\n"))
    slow.close()


# --- fork demo -------------------------------------------------------------------------


def test_fork_demo_forks_a_child_per_line_without_doubled_output():
    result = run_module("fork_demo", input=b"\n\n\nq\n")
    lines = result.stdout.decode().splitlines()
    parents = [line for line in lines if line.startswith("hello from parent")]
    children = [line for line in lines if line.startswith("hello from child")]
    assert len(parents) == 4 and len(children) == 4
    assert lines.count("press Enter to fork a child, q to quit") == 1  # flushed before fork
    child_pids = {int(line.split()[-1]) for line in parents}
    assert child_pids == {int(line.split()[-1]) for line in children}
    assert result.returncode == 0


def test_fork_demo_keeps_zombies_until_exit_and_reaps_with_flag(run_server):
    lecture = run_server("fork_demo", stdin=True, ready=False)
    fixed = run_server("fork_demo", "--reap", stdin=True, ready=False)
    for server in (lecture, fixed):
        server.wait_line("press Enter")
        server.proc.stdin.write(b"\n")
        server.proc.stdin.flush()
        server.wait_line("hello from child")
    wait_for(
        lambda: [p.status() for p in lecture.descendants()] == ["zombie", "zombie"], what="zombie children"
    )
    wait_for(lambda: lecture.descendants() and not fixed.descendants(), what="the reaped child gone")
    for server in (lecture, fixed):
        server.proc.stdin.write(b"q\n")
        server.proc.stdin.flush()
        assert server.proc.wait(10) == 0


# --- forking clock ---------------------------------------------------------------------


def test_forking_clock_forks_one_child_per_client(run_server):
    server = run_server("forking_clock", "--port", "0", "--delay", "0")
    wait_for(lambda: len(server.output()) >= 2, what="the line after the address line")
    assert server.output()[1] == f"server is listening to {server.port}"
    with server.connect() as sock:
        assert CTIME.match(ask(sock).rstrip("\n"))
        assert CTIME.match(ask(sock).rstrip("\n"))  # a child answers every question
        child = wait_for(lambda: server.descendants(), what="a forked child")[0]
        assert child.ppid() == server.proc.pid
    server.wait_line(rf"^appending PID {child.pid}$")


def test_forking_clock_parent_closes_its_copy_so_the_client_sees_eof(run_server):
    server = run_server("forking_clock", "--port", "0", "--delay", "0")
    with server.connect() as sock:
        sock.sendall(QUESTION)
        sock.shutdown(socket.SHUT_WR)
        data = recv_all(sock)  # blocks forever if the parent kept the socket open
    assert CTIME.match(data.decode().rstrip("\n"))


def test_forking_clock_delay_holds_the_answer(run_server):
    server = run_server("forking_clock", "--port", "0", "--delay", "1.0")
    with server.connect() as sock:
        started = time.monotonic()
        assert CTIME.match(ask(sock).rstrip("\n"))
        assert time.monotonic() - started >= 0.9


def _burst(server, count):
    answers = [None] * count
    barrier = threading.Barrier(count)

    def client(index):
        barrier.wait()
        with server.connect(timeout=30) as sock:
            answers[index] = ask(sock)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers


def test_forking_clock_fifty_clients_at_once_leave_zombies_without_reap(run_server):
    server = run_server("forking_clock", "--port", "0", "--delay", "0")
    answers = _burst(server, 50)
    assert all(a and CTIME.match(a.rstrip("\n")) for a in answers), answers

    def forked():
        return {int(m.group(1)) for line in server.output() if (m := re.match(r"^appending PID (\d+)", line))}

    wait_for(lambda: len(forked()) == 50, what="50 distinct child PIDs in the console")
    wait_for(
        lambda: len([p for p in server.descendants() if p.status() == psutil.STATUS_ZOMBIE]) == 50,
        what="50 zombies (the lecture does not reap)",
    )


def test_forking_clock_with_reap_leaves_no_zombies(run_server):
    server = run_server("forking_clock", "--port", "0", "--delay", "0", "--reap")
    answers = _burst(server, 50)
    assert all(a and CTIME.match(a.rstrip("\n")) for a in answers)
    wait_for(lambda: not server.descendants(), what="every child reaped")


def test_forking_clock_refuses_past_max_children(run_server):
    server = run_server("forking_clock", "--port", "0", "--delay", "30", "--max-children", "2")
    holders = [server.connect() for _ in range(2)]
    wait_for(lambda: len(server.descendants()) == 2, what="two children")
    with server.connect() as sock:
        assert recv_line(sock) == "server busy"
    server.wait_line(r"^server busy, refusing")
    assert len(server.descendants()) == 2
    for sock in holders:
        sock.close()


def test_forking_clock_sigterm_runs_kill_processes_and_children_do_not(run_server):
    server = run_server("forking_clock", "--port", "0", "--delay", "30")
    with contextlib.ExitStack() as stack:
        for _ in range(3):
            stack.enter_context(server.connect())
        children = wait_for(
            lambda: len(server.descendants()) == 3 and server.descendants(), what="three children"
        )
        for proc in children:  # in active_processes before the stop, not only forked
            server.wait_line(rf"^appending PID {proc.pid}$")
        # A child must not run the parent's shutdown: SIGTERM to one child only ends that child.
        children[0].terminate()
        wait_for(
            lambda: len([p for p in server.descendants() if p.status() != "zombie"]) == 2,
            what="one child ended",
        )
        assert server.proc.poll() is None
        server.stop()
    assert server.proc.returncode == 0
    killing = sorted(line for line in server.output() if line.startswith("-> killing process"))
    assert killing == sorted(f"-> killing process {proc.pid}" for proc in children)
    for proc in children:
        assert not psutil.pid_exists(proc.pid) or proc.status() == psutil.STATUS_ZOMBIE


def test_forking_clock_short_question_and_silent_client(run_server):
    server = run_server("forking_clock", "--port", "0", "--delay", "0", "--reap")
    with server.connect() as sock:
        sock.sendall(b"abc")
        sock.shutdown(socket.SHUT_WR)
        assert recv_all(sock) == b"error: short question, 3 of 25 bytes\n"
    with server.connect() as sock:
        assert CTIME.match(ask(sock).rstrip("\n"))


# --- fork client -----------------------------------------------------------------------


def test_fork_client_loops_over_one_connection(run_server):
    server = run_server("forking_clock", "--port", "0", "--delay", "0", "--reap")
    result = run_module(
        "fork_client", "--port", str(server.port), "--rounds", "3", "--min", "0", "--max", "0"
    )
    assert result.returncode == 0
    answers = [line for line in result.stdout.decode().splitlines() if CTIME.match(line)]
    assert len(answers) == 3
    assert len([line for line in server.output() if line.startswith("appending PID")]) == 1


# --- web -------------------------------------------------------------------------------


def test_web_hello_and_a_real_404(run_server):
    server = run_server("web", "--port", "0")
    lines = wait_for(lambda: server.output()[1:2], what="the line after the address line")
    assert lines == ["welcome to our web server"]
    status, headers, body = get(server.host, server.port, "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "hello client" in body
    status, _, body = get(server.host, server.port, "/test")
    assert status == 404 and "/test not found" in body


@pytest.mark.parametrize(
    "request_bytes, expected_status",
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /" + b"a" * 10_000 + b" HTTP/1.0\r\n\r\n", 404),
        (b"GET /../etc/passwd HTTP/1.0\r\n\r\n", 404),
        (b"GET /<script>alert(1)</script> HTTP/1.0\r\n\r\n", 404),
        (b"GET /\xff\xfe HTTP/1.0\r\n\r\n", 404),
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.0\r\n\r\n", 414),
    ],
)
def test_web_bad_requests_get_clear_answers(run_server, request_bytes, expected_status):
    server = run_server("web", "--port", "0")
    status, _, body = http_get(server.host, server.port, request_bytes)
    assert status == expected_status
    assert "<script>" not in body
    assert get(server.host, server.port, "/")[0] == 200


def test_web_escapes_the_echoed_path(run_server):
    server = run_server("web", "--port", "0")
    _, _, body = get(server.host, server.port, "/%3Cscript%3Ealert(1)%3C/script%3E")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; not found" in body


def test_web_slow_client_does_not_block_others(run_server):
    server = run_server("web", "--port", "0")
    with server.connect() as slow:
        slow.sendall(b"GET / HT")
        assert get(server.host, server.port, "/")[0] == 200


# --- swap ------------------------------------------------------------------------------


def test_swap_pairs_two_clients_and_swaps_their_lines(run_server):
    server = run_server("swap", "--port", "0")
    with server.connect() as a, server.connect() as b:
        send_line(a, "hello from A\n")
        server.wait_line(r'sent "hello from A"')
        send_line(b, "hello from B\n")
        assert recv_line(a) == "hello from B"
        assert recv_line(b) == "hello from A"


def test_swap_pairs_in_arrival_order(run_server):
    server = run_server("swap", "--port", "0")
    socks = [server.connect() for _ in range(4)]
    for index in (2, 0, 3, 1):  # lines arrive in this order: pairs (2,0) and (3,1)
        send_line(socks[index], f"line {index}\n")
        server.wait_line(rf'sent "line {index}"')
    assert recv_line(socks[2]) == "line 0" and recv_line(socks[0]) == "line 2"
    assert recv_line(socks[3]) == "line 1" and recv_line(socks[1]) == "line 3"
    for sock in socks:
        sock.close()


def test_swap_line_in_pieces_and_non_utf8_bytes(run_server):
    server = run_server("swap", "--port", "0")
    with server.connect() as a, server.connect() as b:
        a.sendall(b"\xff\xfe par")
        a.sendall(b"tial\n")
        server.wait_line(r"sent ")
        b.sendall(b"other\n")
        assert recv_all(b) == b"\xff\xfe partial\n"
        assert recv_line(a) == "other"


def test_swap_client_gone_before_a_whole_line_is_never_paired(run_server):
    server = run_server("swap", "--port", "0")
    with server.connect() as gone:
        gone.sendall(b"no newline")
    server.wait_line(r"left before sending a whole line")
    with server.connect() as a, server.connect() as b:
        send_line(a, "A\n")
        server.wait_line(r'sent "A"')
        send_line(b, "B\n")
        assert recv_line(a) == "B" and recv_line(b) == "A"


def test_swap_waiting_client_that_leaves_is_not_paired(run_server):
    server = run_server("swap", "--port", "0")
    leaver = server.connect()
    send_line(leaver, "I leave\n")
    server.wait_line(r'sent "I leave"')
    leaver.close()
    server.wait_line(r"left while waiting")
    with server.connect() as a, server.connect() as b:
        send_line(a, "A\n")
        server.wait_line(r'sent "A"')
        send_line(b, "B\n")
        assert recv_line(b) == "A"


def test_swap_alone_gets_no_partner(run_server):
    server = run_server("swap", "--port", "0", "--timeout", "0.5")
    with server.connect() as sock:
        send_line(sock, "anyone?\n")
        assert recv_line(sock) == "no partner"


@pytest.mark.parametrize(
    "payload, answer",
    [(b"\n", "error: empty line"), (b"x" * 5000 + b"\n", "error: line too long (1024 bytes at most)")],
)
def test_swap_bad_lines(run_server, payload, answer):
    server = run_server("swap", "--port", "0")
    with server.connect() as sock:
        sock.sendall(payload)
        assert recv_line(sock) == answer


# --- secret number ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", [[], ["--forking"]])
def test_secret_number_wrong_right_then_found_for_everyone(run_server, mode):
    server = run_server("secret_number", "--port", "0", "--secret", "42", *mode)
    with server.connect() as first, server.connect() as second:
        for guess, answer in (("7", "wrong"), ("abc", "error: not a number"), ("42", "right")):
            send_line(first, guess + "\n")
            assert recv_line(first) == answer
        send_line(second, "42\n")
        assert recv_line(second) == "secret found"
        send_line(second, "1\n")
        assert recv_line(second) == "secret found"
    with server.connect() as later:
        send_line(later, "5\n")
        assert recv_line(later) == "secret found"
    assert not any(re.search(r"\b42\b", line) for line in server.output() if "guessed" not in line)


def test_secret_number_exactly_one_right_among_concurrent_forked_guessers(run_server):
    server = run_server("secret_number", "--port", "0", "--forking", env={"FORKWATCH_SECRET": "17"})
    socks = [server.connect() for _ in range(20)]
    for sock in socks:
        send_line(sock, "17\n")
    answers = [recv_line(sock) for sock in socks]
    assert answers.count("right") == 1 and answers.count("secret found") == 19
    for sock in socks:
        sock.close()


def test_secret_number_secret_never_printed(run_server):
    server = run_server("secret_number", "--port", "0", env={"FORKWATCH_SECRET": "63"})
    with server.connect() as sock:
        send_line(sock, "1\n")
        assert recv_line(sock) == "wrong"
    assert not any(re.search(r"\b63\b", line) for line in server.output())


@pytest.mark.parametrize("payload", [b"\xff\xfe\n", b"\n", b"9" * 100 + b"\n", b"-1\n", b"1.5\n"])
def test_secret_number_bad_guesses(run_server, payload):
    server = run_server("secret_number", "--port", "0", "--secret", "50")
    with server.connect() as sock:
        sock.sendall(payload)
        answer = recv_line(sock)
        assert answer in ("error: not a number", "error: line too long", "wrong")
    with server.connect() as sock:
        send_line(sock, "50\n")
        assert recv_line(sock) == "right"


def test_secret_number_rejects_a_bad_secret():
    result = run_module("secret_number", "--secret", "pi")
    assert result.returncode == 1 and b"whole number" in result.stderr


# --- guess the word --------------------------------------------------------------------


def test_guess_word_rules_wrong_right_and_found(run_server):
    server = run_server("guess_word", "--port", "0", env={"FORKWATCH_SECRET": "Kernel"})
    status, _, body = get(server.host, server.port, "/")
    assert status == 200 and "Guess the word" in body
    assert get(server.host, server.port, "/favicon.ico")[0] == 404
    status, _, body = get(server.host, server.port, "/socket")
    assert status == 404 and "<b>socket</b> is not the word" in body
    status, _, body = get(server.host, server.port, "/KER%4EEL")
    assert status == 200 and "You found it" in body
    status, _, body = get(server.host, server.port, "/anything")
    assert status == 200 and "already found" in body
    assert not any("kernel" in line.lower() for line in server.output())


def test_guess_word_escapes_everything_echoed(run_server):
    server = run_server("guess_word", "--port", "0", "--secret", "zombie")
    for path in (
        "/<script>alert(1)</script>",
        "/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/../etc",
        "/" + "w" * 10_000,
    ):
        status, _, body = get(server.host, server.port, path)
        assert status == 404
        assert "<script>" not in body
    assert http_get(server.host, server.port, b"NONSENSE\r\n\r\n")[0] == 400
