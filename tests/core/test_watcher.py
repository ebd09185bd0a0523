"""The live tree under every watch mechanism: forks, exits, zombies, peers and stats, none missed."""

import os
import signal
import threading
import time

import pytest

from tests.helpers import ask, connect, misbehaving, start_ready, wait_for

MECHANISMS = ["netlink", "procfs", "psutil"]


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_two_hundred_clients_at_once_none_missed(manager_factory, mechanism):
    manager, recorder = manager_factory(mechanism=mechanism)
    assert manager.mechanism == mechanism
    server = start_ready(manager, "forking_clock", {"delay": 0, "max_children": 300})
    answers = []
    lock = threading.Lock()

    def client():
        with connect(server, timeout=30) as sock:
            data = ask(sock)
        with lock:
            answers.append(data)

    threads = [threading.Thread(target=client) for _ in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == 200 and all(a.endswith(b"\n") for a in answers)

    def forked_in_console():
        return {int(line.split()[2]) for line in server.output.tail() if line.startswith("appending PID")}

    forked = wait_for(
        lambda: len(forked_in_console()) == 200 and forked_in_console(), what="200 forks in the console"
    )
    wait_for(
        lambda: {p["pid"] for p in recorder.of("proc", server="forking_clock", kind="fork")} >= forked,
        15,
        "200 fork events",
    )
    wait_for(
        lambda: (
            {p["pid"] for p in recorder.of("proc", server="forking_clock", kind="status", status="zombie")}
            >= forked
        ),
        15,
        "200 zombie events",
    )
    detail = manager.server_detail("forking_clock")
    assert detail["children"] == 200
    assert sum(p["status"] == "zombie" for p in detail["tree"]) == 200


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_fork_exit_and_peer_are_reported(manager_factory, mechanism):
    manager, recorder = manager_factory(mechanism=mechanism)
    server = start_ready(manager, "forking_clock", {"delay": 0, "reap": True})
    with connect(server) as sock:
        local = f"127.0.0.1:{sock.getsockname()[1]}"
        fork = wait_for(lambda: recorder.of("proc", server="forking_clock", kind="fork"), what="fork event")[
            0
        ]
        assert fork["peer"] == local and fork["ppid"] == server.pid
        assert ask(sock).endswith(b"\n")
    wait_for(lambda: recorder.of("proc", kind="exit", pid=fork["pid"]), what="exit event once reaped")


def latest_stats(recorder, server):
    """{pid: the latest stats item}: `stats` carries only the processes whose numbers changed."""
    latest = {}
    for stats in recorder.of("stats", server=server):
        latest.update({item["pid"]: item for item in stats["procs"]})
    return latest


def test_stats_are_published(manager_factory):
    manager, recorder = manager_factory()
    server = start_ready(manager, "forking_clock", {"delay": 30})
    with connect(server):
        child = wait_for(lambda: manager.watcher.descendants("forking_clock"), what="the child")[0][0]
        stats = wait_for(
            lambda: {server.pid, child} <= set(s := latest_stats(recorder, "forking_clock")) and s,
            what="stats",
        )
        assert all(stats[pid]["rss"] > 0 for pid in (server.pid, child))


def test_stats_send_only_what_changed_and_never_a_zombie(manager_factory):
    manager, recorder = manager_factory()
    server = start_ready(manager, "forking_clock", {"delay": 0})
    for _ in range(20):
        with connect(server) as sock:
            ask(sock)
    wait_for(lambda: len(manager.watcher.zombies("forking_clock")) == 20, what="20 zombies")
    zombies = {pid for pid, _, _ in manager.watcher.zombies("forking_clock")}
    before = len(recorder.of("stats", server="forking_clock"))
    time.sleep(2.5)  # two or three rounds of stats (once a second), not waiting for something
    later = recorder.of("stats", server="forking_clock")[before:]
    sent = {item["pid"] for stats in recorder.of("stats", server="forking_clock") for item in stats["procs"]}
    assert not sent & zombies
    assert sum(len(stats["procs"]) for stats in later) <= 3  # the idle server, when its numbers moved


@pytest.mark.parametrize("notices", [True, False], ids=["reap-notices", "parents-lists"])
def test_zombies_are_not_reread_yet_their_reaping_is_seen(manager_factory, notices, monkeypatch):
    """Thirty zombies cost no reads while they wait; when their parent reaps them (the server
    keeps running), each is reported gone: from the pidfd's reap notice, or where a kernel
    gives none, from the parent's list of children (one read per parent)."""
    from supervisor.core import watcher as watcher_module

    reads = []
    real = watcher_module.read_stat
    monkeypatch.setattr(watcher_module, "read_stat", lambda pid: reads.append(pid) or real(pid))
    spec = misbehaving("zombies", "--count", "30")
    manager, recorder = manager_factory(mechanism="procfs", extra_servers=[spec])
    assert manager.watcher.source.reports_reaps, "this kernel's pidfds tell of a reaping"
    manager.watcher.source.reports_reaps = notices
    server = start_ready(manager, "zombies")
    wait_for(lambda: len(manager.watcher.zombies("zombies")) == 30, what="30 zombies")
    zombies = {pid for pid, _, _ in manager.watcher.zombies("zombies")}
    reads.clear()
    time.sleep(1.0)  # counting reads over a second of quiet, not waiting for something
    assert not zombies & set(reads), "zombies were read again while nothing happened"
    os.kill(server.pid, signal.SIGUSR1)
    wait_for(
        lambda: zombies <= {p["pid"] for p in recorder.of("proc", server="zombies", kind="exit")},
        5,
        "an exit event for every reaped zombie",
    )
    assert manager.servers["zombies"].state.name == "RUNNING"
