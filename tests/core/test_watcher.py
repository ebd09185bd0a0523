"""The live tree under every watch mechanism: forks, exits, zombies, peers and stats, none
missed; and its faults: netlink refused at start, its buffer overrun, a child gone before it
was read, and netlink gone deaf while running."""

import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from supervisor.core.watcher import TreeWatcher
from supervisor.proc.netlink import NetlinkSource
from supervisor.proc.sources import LOST, NEW, Change
from supervisor.proc.stat import create_time_of
from tests.helpers import (
    Recorder,
    ask,
    connect,
    descendants_of,
    extra_server,
    misbehaving,
    start_ready,
    wait_for,
)
from tests.proc.kernel import NETLINK_ALLOWED, require

MECHANISMS = ["netlink", "procfs", "psutil"]
needs_netlink = pytest.mark.skipif(not NETLINK_ALLOWED, reason="the kernel refuses this user's netlink")


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_two_hundred_clients_at_once_none_missed(manager_factory, mechanism):
    require(mechanism)
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
    assert manager.mechanism == mechanism and manager.watcher.deaf_switches == 0  # no false alarm


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_fork_exit_and_peer_are_reported(manager_factory, mechanism):
    require(mechanism)
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


BUSY_CLOCK = extra_server(
    "busy_clock",
    "forking_clock",
    "--busy",
    "--delay",
    "5",
    description="a child per client burns a core for 5 s",
)


def test_stats_show_a_child_burning_cpu_and_an_idle_server(manager_factory):
    manager, recorder = manager_factory(extra_servers=[BUSY_CLOCK])
    server = start_ready(manager, "busy_clock")
    with connect(server):
        child = wait_for(lambda: manager.watcher.descendants("busy_clock"), what="the child")[0][0]

        def busy_stats():
            procs = latest_stats(recorder, "busy_clock")
            if child in procs and server.pid in procs and procs[child]["cpu_percent"] >= 5:
                return procs  # its share, even on a busy machine
            return None

        procs = wait_for(busy_stats, 5.0, "the child's cpu_percent to show it burning a core")
        assert procs[server.pid]["cpu_percent"] <= 2  # the parent only waits in accept()
        assert all(p["rss"] > 0 for p in procs.values())


# --- faults ------------------------------------------------------------------------------


def test_auto_takes_procfs_when_the_netlink_self_test_fails_and_the_tree_still_comes(
    manager_factory, monkeypatch
):
    monkeypatch.setattr(NetlinkSource, "_self_test", lambda self, timeout: False)
    manager, recorder = manager_factory()  # watch_mechanism auto
    assert manager.mechanism == "procfs"
    server = start_ready(manager, "forking_clock", {"delay": 60})
    with connect(server) as sock:
        peer = f"127.0.0.1:{sock.getsockname()[1]}"
        wait_for(lambda: recorder.of("proc", server="forking_clock", kind="fork", peer=peer), what="the fork")


@needs_netlink
def test_an_overrun_of_netlink_is_repaired_by_a_rescan_with_no_fork_lost(run_server):
    server = run_server("forking_clock", "--port", "0", "--delay", "60")
    recorder = Recorder()
    watcher = TreeWatcher(recorder, mechanism="netlink", rescan_interval=3600)
    drained = []
    real_drain = watcher.source.drain
    watcher.source.drain = lambda: drained.extend(changes := real_drain()) or changes
    socks = []
    try:
        watcher.watch("forking_clock", server.proc.pid, server.port)
        watcher.sweep()  # the first periodic rescan, now out of the way
        watcher.source.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)  # the kernel's minimum
        socks = [connect(server) for _ in range(30)]  # 30 forks, none read meanwhile
        for _ in range(20):
            subprocess.run(["true"], check=True)  # and more notices, to be sure of the overrun
        children = wait_for(
            lambda: len(descendants_of(server.proc.pid)) == 30 and descendants_of(server.proc.pid)
        )
        for _ in range(3):
            watcher.sweep()
        assert any(change.kind == LOST for change in drained)
        forked = {p["pid"] for p in recorder.of("proc", kind="fork")}
        assert forked == {child.pid for child in children}
    finally:
        for sock in socks:
            sock.close()
        watcher.close()


def test_a_child_gone_before_it_could_be_read_is_still_reported(run_server):
    server = run_server("forking_clock", "--port", "0", "--delay", "60")
    recorder = Recorder()
    watcher = TreeWatcher(recorder, mechanism="procfs")
    try:
        watcher.watch("forking_clock", server.proc.pid, server.port)
        gone = subprocess.Popen(["true"])
        gone.wait()  # its PID now names no process, as a child that lived a few microseconds
        assert create_time_of(gone.pid) is None
        watcher.apply([Change(NEW, gone.pid, server.proc.pid)])  # as netlink tells of such a fork
        events = recorder.of("proc", pid=gone.pid)
        assert [(e["kind"], e["status"], e["ppid"]) for e in events] == [
            ("fork", "dead", server.proc.pid),
            ("exit", "dead", server.proc.pid),
        ]
        assert watcher.descendants("forking_clock") == []
    finally:
        watcher.close()


@needs_netlink
def test_netlink_gone_deaf_is_replaced_by_procfs_and_the_page_is_told(manager_factory, monkeypatch):
    manager, recorder = manager_factory(mechanism="netlink")
    watcher = manager.watcher
    server = start_ready(manager, "forking_clock", {"delay": 60})
    deaf = watcher.source

    def receive_nothing():  # the socket's notices are read and lost, as when nobody sends them
        while True:
            try:
                deaf.sock.recv(65536)
            except BlockingIOError:
                return []

    monkeypatch.setattr(deaf, "_receive", receive_nothing)
    watcher.rescan_interval = 0.2
    with connect(server) as first:
        peer = f"127.0.0.1:{first.getsockname()[1]}"
        fork = wait_for(
            lambda: recorder.of("proc", kind="fork", peer=peer), 5.0, "the rescan to find the child"
        )
        wait_for(lambda: manager.mechanism == "procfs", 5.0, "the switch to procfs")
        event = next(e for e in manager.events_after(0)["events"] if e["kind"] == "watch")
        assert event["mechanism"] == "procfs"
        assert (
            f"netlink stopped reporting new processes (it never told of PID {fork[0]['pid']}" in event["text"]
        )
        snapshot = manager.snapshot()
        assert snapshot["mechanism"] == "procfs" and snapshot["mechanism_switches"] == 1
        assert deaf.sock is None  # closed
        procfs, told = watcher.source, []
        real_drain = procfs.drain
        monkeypatch.setattr(procfs, "drain", lambda: told.extend(changes := real_drain()) or changes)
        with connect(server) as second:
            peer = f"127.0.0.1:{second.getsockname()[1]}"
            child = wait_for(lambda: recorder.of("proc", kind="fork", peer=peer), 2.0, "the next child")[0]
            assert Change(NEW, child["pid"]) in told  # procfs's own listing told of it
