"""Signals, only ever to a process identified by (pid, create_time) and through a pidfd,
so a reused PID can never be hit; and the one way a tree is ended, `kill_tree_and_wait`
(stop, the clean-up after a crash, the watchdog), which waits on pidfds rather than
rescanning /proc.
"""

import dataclasses
import os
import select
import signal
import time

from supervisor.proc.stat import all_pids, parent_map, read_stat, reap, same_time


class SignalResult:
    SENT = "sent"
    GONE = "gone"
    REUSED = "reused"
    ZOMBIE = "zombie"


def _open_checked(pid, create_time):
    """(pidfd, None) for that very process, else (None, SignalResult saying why not).

    The pidfd is opened first and the identity checked after: from then on the pidfd
    names that one process, so a PID reused in between cannot receive a signal.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None, SignalResult.GONE
    stat = read_stat(pid)
    why = None
    if stat is None:
        why = SignalResult.GONE
    elif create_time is not None and not same_time(stat.create_time, create_time):
        why = SignalResult.REUSED
    elif stat.state == "Z":
        why = SignalResult.ZOMBIE
    if why is not None:
        os.close(pidfd)
        return None, why
    return pidfd, None


def _send(pidfd, sig):
    try:
        signal.pidfd_send_signal(pidfd, sig)
    except ProcessLookupError:
        return SignalResult.GONE
    return SignalResult.SENT


def signal_process(pid, create_time, sig, before_send=None):
    """Send sig to pid only if it is still the process created at create_time.
    `before_send()` runs once that is sure and before the signal goes, so that what it
    announces comes before anything the signal causes (the process's exit)."""
    pidfd, why = _open_checked(pid, create_time)
    if pidfd is None:
        return why
    try:
        if before_send is not None:
            before_send()
        return _send(pidfd, sig)
    finally:
        os.close(pidfd)


def signal_group(pgid, sig):
    """Signal a process group; False when it no longer exists."""
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _group_ids(groups, stats):
    """The recorded groups that are still ours: `groups` is {pgid: create_time of its
    leader, or None}; a group counts only while its leader is gone or is still that
    process, so a recycled number is never taken for ours."""
    return {
        pgid
        for pgid, created in groups.items()
        if stats.get(pgid) is None or created is None or same_time(stats[pgid].create_time, created)
    }


def tree_of(groups, stats):
    """{pid: Stat} of every process of the recorded groups (or sessions) and of everything
    below them (see _group_ids)."""
    ids = _group_ids(groups, stats)
    children = {}
    for stat in stats.values():
        children.setdefault(stat.ppid, []).append(stat)
    found = {s.pid: s for s in stats.values() if s.pgrp in ids or s.session in ids}
    todo = list(found)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child.pid not in found:
                found[child.pid] = child
                todo.append(child.pid)
    found.pop(os.getpid(), None)
    return found


class _Tree:
    """A tree to end: found by one scan of /proc, then kept up to date from the PIDs that
    appear later (only a fork adds a process to it), without reading /proc again."""

    def __init__(self, groups, snapshot):
        stats = parent_map()
        self._listed = set(stats)
        self._ids = _group_ids(groups, stats)
        members = tree_of(groups, stats)
        self.grown = set(members)  # what grew from the groups (its zombies are reaped here)
        for pid, created in snapshot:
            stat = stats.get(pid)
            if stat is not None and same_time(stat.create_time, created):
                members.setdefault(pid, stat)
        members.pop(os.getpid(), None)
        self.pids = set(members)
        self.first = [s for s in members.values() if s.state != "Z"]

    def newcomers(self):
        """Live processes that joined the tree since the last look."""
        found = []
        for pid in sorted(set(all_pids()) - self._listed):  # parents before their children
            self._listed.add(pid)
            stat = read_stat(pid)
            if stat is not None and (
                stat.pgrp in self._ids or stat.session in self._ids or stat.ppid in self.pids
            ):
                self.pids.add(pid)
                self.grown.add(pid)
                if stat.state != "Z":
                    found.append(stat)
        return found


@dataclasses.dataclass
class TreeEnd:
    """What kill_tree_and_wait did: the (pid, create_time) of every live process of the tree
    it found, of those it signalled, and of those still alive at its deadline (none: the
    tree is gone)."""

    seen: set
    signalled: set
    left: set

    @property
    def gone(self):
        return not self.left


def _signal_groups(groups, sig):
    """Signal, as a whole, each group whose leader is still the recorded process (a zombie
    leader still holds its number): one kill that also reaches a child being forked at that
    instant. Returns the groups signalled."""
    done = set()
    for pgid, created in groups.items():
        leader = read_stat(pgid)
        if leader is not None and (created is None or same_time(leader.create_time, created)):
            if signal_group(pgid, sig):
                done.add(pgid)
    return done


def kill_tree_and_wait(groups, tree=(), sig=signal.SIGKILL, timeout=5.0):
    """Send sig to every live process of `groups` and below them (see tree_of) and to each
    (pid, create_time) of `tree` (a snapshot taken before, which catches a child that left
    the group by setsid()); then wait until every one has exited.

    /proc is read first (a child outside the groups is found while its parent still lives);
    then a group whose leader is still the recorded process gets sig as a group, and every
    other process once, through its own pidfd. Waiting is on pidfds, which become readable
    when their process exits; when all have, only the PIDs that appeared since are read, to
    find any process forked meanwhile. A zombie counts as gone; zombies of ours (orphans
    reparented to this subreaper) are reaped by PID, except the groups' leaders, which their
    Popen reaps.
    """
    deadline = time.monotonic() + timeout
    found = _Tree(groups, tree)
    fresh = found.first
    by_group = _signal_groups(groups, sig) if fresh else set()
    waiting = {}  # pidfd -> (pid, create_time)
    poller = select.poll()
    seen, signalled = set(), set()
    try:
        while fresh:
            if time.monotonic() >= deadline:
                return TreeEnd(seen, signalled, {s.key for s in fresh})
            for stat in fresh:
                seen.add(stat.key)
                by_its_group = stat.pgrp in by_group  # alive when its group was hit
                if by_its_group:
                    signalled.add(stat.key)
                pidfd, _ = _open_checked(stat.pid, stat.create_time)
                if pidfd is None:
                    continue  # gone (or a zombie) already, or reused since the scan
                if not by_its_group and _send(pidfd, sig) == SignalResult.SENT:
                    signalled.add(stat.key)
                waiting[pidfd] = stat.key
                poller.register(pidfd, select.POLLIN)
            by_group = set()  # a process found later was not there when the groups were hit
            while waiting:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return TreeEnd(seen, signalled, set(waiting.values()))
                for pidfd, _ in poller.poll(remaining * 1000):
                    poller.unregister(pidfd)
                    os.close(pidfd)
                    waiting.pop(pidfd)
            fresh = found.newcomers()
        return TreeEnd(seen, signalled, set())
    finally:
        for pidfd in waiting:
            os.close(pidfd)
        for pid in found.grown - set(groups):
            reap(pid)
