"""What each watched process is doing, on real servers and real forks: the tree rows, the
`doing` events when an activity changes, the countdown carried by the stats."""

import re

import pytest

from supervisor.core.doing import SERVE_FOREVER_SENTENCE, ZOMBIE_SENTENCE
from supervisor.core.watcher import TreeWatcher
from tests.helpers import ask, connect, start_ready, wait_for

COUNTDOWN = re.compile(r"^sleeping in sleep\(\) — (\d+) s of its (\d+) s delay left$")


def row_of(manager, name, pid, **wanted):
    """The tree row of pid once it has every wanted field value; fails with the last row."""

    def matching():
        rows = [r for r in manager.server_detail(name)["tree"] if r["pid"] == pid]
        return rows and all(rows[0].get(k) == v for k, v in wanted.items()) and rows[0]

    return wait_for(matching, 10, f"row {pid} with {wanted}")


def child_of(manager, name):
    server = manager.servers[name]
    rows = wait_for(
        lambda: [r for r in manager.server_detail(name)["tree"] if r["pid"] != server.pid], 10, "a child"
    )
    return rows[0]


def test_the_parent_waits_in_accept_and_a_child_counts_its_delay_down(manager_factory):
    manager, recorder = manager_factory()
    server = start_ready(manager, "forking_clock", {"delay": 30})
    parent = row_of(manager, "forking_clock", server.pid, activity="accept")
    assert parent["doing"] == f"waiting for a client in accept() on :{server.port}"
    assert parent["syscall"] in ("accept", "accept4")
    assert parent["fd_target"] == f"listening socket :{server.port}"
    assert parent["sleep_left_s"] is None and parent["sleep_s"] is None
    with connect(server):
        pid = child_of(manager, "forking_clock")["pid"]
        child = row_of(manager, "forking_clock", pid, activity="sleep")
        left = int(COUNTDOWN.match(child["doing"]).group(1))
        assert COUNTDOWN.match(child["doing"]).group(2) == "30" and 28 <= left <= 30
        assert child["syscall"] in ("clock_nanosleep", "nanosleep") and child["fd_target"] is None
        assert child["sleep_s"] == 30 and 27 < child["sleep_left_s"] <= 30
        fork = wait_for(lambda: recorder.of("proc", kind="fork", pid=pid), what="the fork event")[0]
        assert {"doing", "syscall", "fd_target", "activity"} <= set(fork)


@pytest.mark.parametrize("mechanism", ["auto", "procfs"])
def test_an_activity_change_is_one_doing_event_and_the_countdown_rides_on_the_stats(
    manager_factory, mechanism
):
    manager, recorder = manager_factory(mechanism)
    server = start_ready(manager, "forking_clock", {"delay": 3})
    with connect(server) as sock:
        pid = child_of(manager, "forking_clock")["pid"]
        peer = f"127.0.0.1:{sock.getsockname()[1]}"
        served = wait_for(
            lambda: recorder.of("proc", kind="doing", pid=pid, activity="recv"), 10, "the child in recv()"
        )[0]
        assert served["doing"] == f"waiting in recv() for {peer}'s question"
        assert served["fd_target"] == f"connection with {peer}"
        # One event tells of the sleep, however long it counts: its own `doing` event, or the
        # fork event itself when the child was first read already asleep (procfs finds a
        # fork up to 20 ms late; netlink tells of it before the child runs).
        sleeps = [e for e in recorder.of("proc", pid=pid, activity="sleep") if e["kind"] in ("fork", "doing")]
        assert len(sleeps) == 1, sleeps
        counted = [
            p["doing"]
            for stats in recorder.of("stats", server="forking_clock")
            for p in stats["procs"]
            if p["pid"] == pid and p["activity"] == "sleep"
        ]
        assert len(set(counted)) >= 2, counted  # 3, 2, 1: a new sentence each second
        assert all(COUNTDOWN.match(text) for text in counted)
        last = recorder.of("stats", server="forking_clock")[-1]["procs"]
        assert {p["pid"]: p["status"] for p in last}[pid] in ("sleeping", "running")
        assert ask(sock).endswith(b"\n")


def test_a_zombie_says_nobody_called_wait(manager_factory):
    manager, recorder = manager_factory()
    server = start_ready(manager, "forking_clock", {"delay": 0})
    with connect(server) as sock:
        pid = child_of(manager, "forking_clock")["pid"]
        assert ask(sock).endswith(b"\n")
    event = wait_for(lambda: recorder.of("proc", kind="status", pid=pid, status="zombie"), what="zombie")[0]
    assert event["doing"] == ZOMBIE_SENTENCE and event["activity"] == "zombie"
    row_of(manager, "forking_clock", pid, doing=ZOMBIE_SENTENCE, syscall=None, fd_target=None)


def test_serve_forever_polls_and_handle_request_blocks_once(manager_factory):
    manager, _ = manager_factory()
    server = start_ready(manager, "clock")
    row = row_of(manager, "clock", server.pid, activity="poll")
    assert row["doing"] == SERVE_FOREVER_SENTENCE
    manager.stop("clock")
    wait_for(lambda: manager.servers["clock"].state.name == "STOPPED", 10, "clock stopped")
    once = start_ready(manager, "clock", {"once": True})
    row = row_of(manager, "clock", once.pid, activity="accept")
    assert row["doing"] == f"waiting for a client in poll() on :{once.port}"  # handle_request polls first


def test_readings_of_exited_children_are_forgotten_and_their_exit_says_gone(manager_factory):
    manager, recorder = manager_factory()
    server = start_ready(manager, "forking_clock", {"delay": 0, "reap": True})
    for _ in range(3):
        with connect(server) as sock:
            assert ask(sock).endswith(b"\n")
    exits = wait_for(lambda: len(e := recorder.of("proc", kind="exit")) == 3 and e, 10, "three exits")
    assert {e["doing"] for e in exits} == {"gone (exited)"}
    wait_for(lambda: len(manager.watcher.activities) == 1, 5, "only the parent's reading kept")


def test_a_watcher_that_does_not_read_leaves_the_fields_empty(run_server):
    published = []
    watcher = TreeWatcher(lambda kind, payload: published.append((kind, payload)), read_doing=False)
    server = run_server("forking_clock", "--port", "0", "--delay", "30")
    try:
        watcher.watch("forking_clock", server.proc.pid, server.port, child_delay_s=30)
        with server.connect():
            wait_for(lambda: (watcher.sweep(), len(watcher.snapshot("forking_clock")) == 2)[1], 10, "a child")
            rows = [info.as_dict() for info in watcher.snapshot("forking_clock")]
            assert all(r["doing"] is None and r["syscall"] is None and r["activity"] is None for r in rows)
            stats = wait_for(
                lambda: (watcher.sweep(), [p for k, p in published if k == "stats"])[1], 5, "stats"
            )
            assert all("doing" not in p and "status" in p for p in stats[-1]["procs"])
            assert len(watcher.activities) == 0
    finally:
        watcher.unwatch("forking_clock")
        watcher.close()
