"""The forking server's guards around the lecture: it blocks in accept() (no polling loop),
reaps on SIGCHLD with --reap, and its child cap counts zombies too."""

import socket

import psutil

from tests.helpers import recv_line, wait_for
from tests.servers.lecture_support import (
    CTIME,
    accept4_number,
    ask_and_close,
    run_client,
    syscall_number,
    wait_blocked_in_accept,
)

ZOMBIE_REFUSAL = "server busy: 2 children not yet reaped — turn on reaping or Stop"


def zombies(server):
    return [p for p in server.descendants() if p.status() == psutil.STATUS_ZOMBIE]


def test_idle_parent_is_blocked_in_accept_not_polling(run_server):
    server = run_server("forking_clock", "--port", "0", "--delay", "0")
    wait_blocked_in_accept(server.proc.pid)
    # Still there a moment later, and every time we look: a select()/poll() loop would be
    # found in its own system call almost always.
    assert [syscall_number(server.proc.pid) for _ in range(50)] == [accept4_number()] * 50


def test_with_reap_a_child_is_reaped_on_sigchld_and_the_parent_goes_back_to_accept(run_server):
    server = run_server("forking_clock", "--port", "0", "--delay", "0", "--reap")
    wait_blocked_in_accept(server.proc.pid)
    _, reply = ask_and_close(server)
    assert CTIME.fullmatch(reply.rstrip("\n"))
    server.wait_line(r"^closing client socket, exiting child process$")
    # No new client came: only SIGCHLD can have woken the parent to reap the child.
    wait_for(lambda: not server.descendants(), what="the child reaped on SIGCHLD")
    wait_blocked_in_accept(server.proc.pid)


def test_zombies_fill_the_cap_and_the_next_client_is_told_why(run_server):
    server = run_server("forking_clock", "--port", "0", "--delay", "0", "--max-children", "2")
    for _ in range(2):
        _, reply = ask_and_close(server)
        assert CTIME.fullmatch(reply.rstrip("\n"))
    wait_for(lambda: len(zombies(server)) == 2, what="two zombies (no --reap)")
    port, reply = ask_and_close(server)
    assert reply == ZOMBIE_REFUSAL + "\n"
    server.wait_line(
        rf"^server busy, refusing \('127\.0\.0\.1', {port}\): 2 children not yet reaped \(2 of them zombies\)$"
    )
    assert len(server.descendants()) == 2  # no third fork
    looping = run_client("fork_client", "--port", str(server.port), "--rounds", "1")
    assert looping.returncode == 2
    assert looping.stdout.decode().splitlines()[-1] == ZOMBIE_REFUSAL  # the whole line, not 25 bytes of it


def test_live_children_fill_the_cap_with_the_plain_refusal(run_server):
    server = run_server("forking_clock", "--port", "0", "--delay", "30", "--max-children", "2")
    holders = [server.connect() for _ in range(2)]
    try:
        wait_for(lambda: len(server.descendants()) == 2, what="two children")
        with server.connect() as sock:
            port = sock.getsockname()[1]
            assert recv_line(sock) == "server busy"
        server.wait_line(rf"^server busy, refusing \('127\.0\.0\.1', {port}\): 2 children still serving$")
    finally:
        for sock in holders:
            sock.close()


def test_with_reap_finished_children_free_their_place_under_the_cap(run_server):
    server = run_server("forking_clock", "--port", "0", "--delay", "0", "--max-children", "2", "--reap")
    for _ in range(5):
        _, reply = ask_and_close(server)
        assert CTIME.fullmatch(reply.rstrip("\n")), reply
        server.wait_line(r"^closing client socket")
        wait_for(lambda: not server.descendants(), what="the child reaped")
    assert not any(line.startswith("server busy") for line in server.output())


def test_a_refused_client_that_sent_nothing_sees_the_line_and_eof(run_server):
    server = run_server("forking_clock", "--port", "0", "--delay", "0", "--max-children", "1")
    ask_and_close(server)
    wait_for(lambda: len(zombies(server)) == 1, what="a zombie")
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        assert recv_line(sock) == "server busy: 1 child not yet reaped — turn on reaping or Stop"
        assert sock.recv(10) == b""
