"""Signals by identity and the one kill of a tree, on real process trees."""

import os
import signal
import subprocess
import sys

from supervisor.proc import signals
from supervisor.proc.signals import SignalResult, kill_tree_and_wait, signal_process
from supervisor.proc.stat import create_time_of, descendants, exists, is_alive, reap
from tests.helpers import connect, wait_for

MISBEHAVING = "tests.fixtures.misbehaving"


def children_of(server, count):
    found = wait_for(lambda: len(descendants(server.proc.pid)) >= count and descendants(server.proc.pid))
    return {stat.key for stat in found}


def test_a_forking_server_and_its_children_end_with_one_call(run_server):
    server = run_server("forking_clock", "--port", "0", "--delay", "60")
    socks = [connect(server) for _ in range(5)]
    children = children_of(server, 5)
    group = {server.proc.pid: create_time_of(server.proc.pid)}
    end = kill_tree_and_wait(group, sig=signal.SIGTERM, timeout=5.0)
    assert end.gone and end.left == set()
    assert (server.proc.pid, group[server.proc.pid]) in end.signalled
    assert not any(is_alive(pid, created) for pid, created in children)
    assert server.proc.wait(5) == 0  # the server ran its own kill_processes() and exited
    for sock in socks:
        sock.close()


def test_a_child_in_its_own_session_is_killed_as_part_of_the_tree(run_server):
    server = run_server(MISBEHAVING, "--mode", "setsid-child")
    line = server.wait_line(r"^child \d+ in its own session$")
    child = int(line.split()[1])
    child_key = (child, create_time_of(child))
    assert os.getsid(child) == child != os.getpgid(server.proc.pid)
    end = kill_tree_and_wait({server.proc.pid: create_time_of(server.proc.pid)}, timeout=5.0)
    assert end.gone and child_key in end.signalled
    assert not is_alive(*child_key)


def test_a_process_of_the_snapshot_outside_the_groups_is_signalled_too():
    loner = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"], start_new_session=True)
    try:
        key = wait_for(lambda: create_time_of(loner.pid) and (loner.pid, create_time_of(loner.pid)))
        end = kill_tree_and_wait({}, tree={key}, sig=signal.SIGKILL, timeout=5.0)
        assert end.gone and end.signalled == {key}
        assert loner.wait(5) == -signal.SIGKILL
    finally:
        loner.kill()
        loner.wait()


def test_one_that_ignores_sigterm_is_named_at_the_deadline_and_waiting_never_rescans(run_server, monkeypatch):
    server = run_server(MISBEHAVING, "--mode", "ignore-term")
    server.wait_line("^ignoring SIGTERM$")
    key = (server.proc.pid, create_time_of(server.proc.pid))
    scans = []
    real_scan = signals.parent_map
    monkeypatch.setattr(signals, "parent_map", lambda: scans.append(1) or real_scan())
    end = kill_tree_and_wait({key[0]: key[1]}, sig=signal.SIGTERM, timeout=0.5)
    assert not end.gone and end.left == {key} and end.signalled == {key}
    assert len(scans) == 1  # half a second on its pidfd, not a /proc scan every few ms
    assert is_alive(*key)
    assert kill_tree_and_wait({key[0]: key[1]}, sig=signal.SIGKILL).gone
    assert server.proc.wait(5) == -signal.SIGKILL


def test_a_recycled_group_number_is_never_taken_for_ours(stranger):
    created = create_time_of(stranger.pid)
    end = kill_tree_and_wait({stranger.pid: created - 100.0}, sig=signal.SIGKILL, timeout=1.0)
    assert end.gone and end.signalled == set()
    assert stranger.poll() is None and is_alive(stranger.pid, created)


def test_signal_process_says_what_it_did():
    child = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
    created = wait_for(lambda: create_time_of(child.pid))
    assert signal_process(child.pid, created - 5.0, signal.SIGTERM) == SignalResult.REUSED
    assert signal_process(child.pid, created, signal.SIGTERM) == SignalResult.SENT
    wait_for(lambda: not is_alive(child.pid, created), what="the child a zombie")
    assert exists(child.pid, created)
    assert signal_process(child.pid, created, signal.SIGKILL) == SignalResult.ZOMBIE
    assert reap(child.pid)
    assert signal_process(child.pid, created, signal.SIGKILL) == SignalResult.GONE
    child.wait(5)
