"""The options for comparisons: a handler that takes a visible time (--work, the forking
server's --delay) and the same time as CPU work (--busy). One client at a time takes N x S
for N clients; threads and processes about S; CPU work in threads shares one core (the
GIL) while forked children each do their own."""

import contextlib
import socket
import threading
import time

import psutil
import pytest

from tests.helpers import wait_for
from tests.servers.lecture_support import CTIME, recv_reply_after, run_client

SECONDS = 1.0


def at_once(server, count=2):
    """`count` clients start together (a barrier), each connects and asks once; returns
    the seconds each waited for its answer, counted from the common start, sorted."""
    barrier = threading.Barrier(count)
    waited = []
    lock = threading.Lock()

    def client():
        barrier.wait(10)
        began = time.monotonic()
        with socket.create_connection((server.host, server.port), timeout=30) as sock:
            reply = recv_reply_after(sock)
        assert CTIME.fullmatch(reply.rstrip("\n")), reply
        with lock:
            waited.append(time.monotonic() - began)

    threads = [threading.Thread(target=client) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(waited) == count, "a client got no answer"
    return sorted(waited)


def test_one_client_at_a_time_two_clients_take_twice_the_work(run_server):
    server = run_server("clock", "--port", "0", "--work", f"{SECONDS:g}")
    first, second = at_once(server)
    assert first >= 0.95 * SECONDS
    assert second >= 1.9 * SECONDS  # served one after the other: N x S
    assert [line for line in server.output() if line.startswith("working")] == [
        "working for 1 second ..."
    ] * 2


@pytest.mark.parametrize(
    "module, args",
    [("clock", ["--threading", "--work", f"{SECONDS:g}"]), ("forking_clock", ["--delay", f"{SECONDS:g}"])],
    ids=["threads", "processes"],
)
def test_threads_and_processes_serve_two_clients_in_about_the_work_time(run_server, module, args):
    server = run_server(module, "--port", "0", *args)
    first, second = at_once(server)
    assert first >= 0.95 * SECONDS
    assert second < 1.7 * SECONDS  # side by side: about S, not 2 x S


def test_cpu_work_in_threads_shares_one_core(run_server):
    work = 0.5
    server = run_server("clock", "--port", "0", "--threading", "--work", f"{work:g}", "--busy")
    cpu_before = psutil.Process(server.proc.pid).cpu_times()
    first, second = at_once(server)
    cpu_after = psutil.Process(server.proc.pid).cpu_times()
    used = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    assert used >= 2 * work * 0.9  # each handler did its own share of CPU work
    assert second >= 2 * work * 0.9  # one process, the GIL: the two shares one after the other
    assert server.output().count(f"working on the CPU for {work:g} seconds ...") == 2


@pytest.mark.parametrize("busy", [True, False], ids=["busy", "sleeping"])
def test_forked_children_each_spend_the_delay_as_cpu_only_when_busy(run_server, busy):
    delay = 0.5
    server = run_server(
        "forking_clock", "--port", "0", "--delay", f"{delay:g}", *(["--busy"] if busy else [])
    )
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(server.connect(timeout=30)) for _ in range(2)]
        for sock in socks:
            assert CTIME.fullmatch(recv_reply_after(sock).rstrip("\n"))
        children = wait_for(
            lambda: len(server.descendants()) == 2 and server.descendants(), what="two children"
        )
        # The children are alive (each waits for its client's next question): read their CPU.
        cpu = [sum(child.cpu_times()[:2]) for child in children]
    for seconds in cpu:
        if busy:
            assert delay * 0.9 <= seconds <= delay + 0.4, cpu
        else:
            assert seconds < 0.2, cpu


@pytest.mark.parametrize(
    "module, args, said",
    [
        ("clock", ["--busy"], "give --work SECONDS too"),
        ("clock", ["--work", "-1"], "seconds must be 0 or more"),
        ("clock", ["--work", "nan"], "seconds must be 0 or more"),
        ("forking_clock", ["--delay", "later"], "not a number of seconds"),
        ("forking_clock", ["--max-children", "0"], "--max-children must be 1 or more"),
    ],
)
def test_bad_work_options_are_refused_clearly(module, args, said):
    result = run_client(module, *args)
    assert result.returncode == 2
    assert said in result.stderr.decode()
