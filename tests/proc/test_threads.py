"""The threads of a process, which its tree hides: a threading server shows one process
and, while it serves, a thread per client, each with its own CPU time."""

import contextlib
import os
import threading

from supervisor.proc.threads import threads_of
from tests.helpers import QUESTION, wait_for


def test_this_process_lists_its_threads_main_first():
    release = threading.Event()
    worker = threading.Thread(target=release.wait, name="worker")
    worker.start()
    try:
        found = threads_of(os.getpid())
        assert found[0].main and found[0].tid == os.getpid()
        assert worker.native_id in {t.tid for t in found}
        assert all(not t.main for t in found[1:])
        assert all(t.cpu_seconds >= 0 for t in found)
    finally:
        release.set()
        worker.join()


def test_a_threading_server_has_a_thread_per_client_while_it_works(run_server):
    server = run_server("clock", "--port", "0", "--threading", "--work", "3", "--busy")
    assert len(threads_of(server.proc.pid)) == 1  # idle: its main thread alone
    with contextlib.ExitStack() as stack:
        for _ in range(2):
            stack.enter_context(server.connect()).sendall(QUESTION)
        busy = wait_for(
            lambda: len(found := threads_of(server.proc.pid)) == 3 and found, 10.0, "a thread per client"
        )
        workers = busy[1:]
        # each handler thread computes on its own CPU clock
        wait_for(
            lambda: all(t.cpu_seconds > 0.1 for t in threads_of(server.proc.pid)[1:]),
            10.0,
            "both handler threads to use CPU",
        )
    assert {t.tid for t in workers} and all(t.tid != server.proc.pid for t in workers)


def test_a_process_that_is_gone_has_no_threads(run_server):
    server = run_server("clock", "--port", "0")
    pid = server.proc.pid
    server.stop()
    assert threads_of(pid) == []
