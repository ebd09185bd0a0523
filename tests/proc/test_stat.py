"""Stat and identity: /proc read as psutil would, a gone process as None, a tree from one scan."""

import os

import psutil

from supervisor.proc.stat import ZOMBIE, create_time_of, descendants, parent_map, read_stat, same_time
from tests.helpers import connect, wait_for


def test_read_stat_agrees_with_psutil():
    mine, theirs = read_stat(os.getpid()), psutil.Process()
    assert (mine.pid, mine.ppid, mine.pgrp, mine.session) == (
        theirs.pid,
        theirs.ppid(),
        os.getpgrp(),
        os.getsid(0),
    )
    assert same_time(mine.create_time, theirs.create_time())
    assert mine.key == (mine.pid, mine.create_time)


def test_a_gone_process_reads_as_none():
    assert read_stat(4_000_000) is None and create_time_of(4_000_000) is None


def test_a_servers_tree_and_its_zombies_from_one_scan(run_server):
    server = run_server("forking_clock", "--port", "0", "--delay", "0")
    socks = [connect(server) for _ in range(3)]
    children = wait_for(lambda: len(descendants(server.proc.pid)) == 3 and descendants(server.proc.pid))
    assert {c.ppid for c in children} == {server.proc.pid}
    stats = parent_map()
    assert {c.pid for c in descendants(server.proc.pid, stats)} == {c.pid for c in children}
    for sock in socks:
        sock.close()  # each child reads EOF instead of a question, exits, and stays a zombie
    wait_for(lambda: all(read_stat(c.pid).status == ZOMBIE for c in children), what="three zombies")
