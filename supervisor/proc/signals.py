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

from supervisor.proc.stat import parent_map, read_stat, reap, same_time


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


def signal_process(pid, create_time, sig):
    """Send sig to pid only if it is still the process created at create_time."""
    pidfd, why = _open_checked(pid, create_time)
    if pidfd is None:
        return why
    try:
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


def tree_of(groups, stats):
    """{pid: Stat} of every process of the recorded groups (or sessions) and of everything
    below them. `groups` is {pgid: create_time of its leader, or None}; a group counts only
    while its leader is gone or is still that process, so a recycled number is never taken
    for ours."""
    ids = set()
    for pgid, created in groups.items():
        leader = stats.get(pgid)
        if leader is None or created is None or same_time(leader.create_time, created):
            ids.add(pgid)
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


@dataclasses.dataclass
class TreeEnd:
    """What kill_tree_and_wait did: the (pid, create_time) it signalled, and those still
    alive at its deadline (none: the tree is gone)."""

    signalled: set
    left: set

    @property
    def gone(self):
        return not self.left


def kill_tree_and_wait(groups, tree=(), sig=signal.SIGKILL, timeout=5.0):
    """Send sig once to every live process of `groups` and below them (see tree_of) and to
    each (pid, create_time) of `tree` (a snapshot taken before, which catches a child that
    left the group by setsid()); then wait until every one has exited.

    Waiting is on pidfds, which become readable when their process exits; /proc is read
    again only when all of them have, to find any process forked meanwhile. A zombie counts
    as gone; zombies of ours (orphans reparented to this subreaper) are reaped by PID, except
    the groups' leaders, which their Popen reaps.
    """
    deadline = time.monotonic() + timeout
    me = os.getpid()
    handled = {}  # pid -> create_time: each process is signalled once
    waiting = {}  # pidfd -> (pid, create_time)
    poller = select.poll()
    signalled = set()
    try:
        while True:
            stats = parent_map()
            targets = []
            for stat in tree_of(groups, stats).values():
                if stat.state != "Z":
                    targets.append(stat)
                elif stat.ppid == me and stat.pid not in groups:
                    reap(stat.pid)
            for pid, created in tree:
                stat = stats.get(pid)
                if stat is not None and stat.state != "Z" and same_time(stat.create_time, created):
                    targets.append(stat)
            fresh = {
                s.pid: s
                for s in targets
                if s.pid not in handled or not same_time(handled[s.pid], s.create_time)
            }
            if not fresh:
                return TreeEnd(signalled, set())
            if time.monotonic() >= deadline:
                return TreeEnd(signalled, {s.key for s in fresh.values()})
            for stat in fresh.values():
                handled[stat.pid] = stat.create_time
                pidfd, _ = _open_checked(stat.pid, stat.create_time)
                if pidfd is None:
                    continue  # gone, a zombie, or reused since the scan
                if _send(pidfd, sig) == SignalResult.SENT:
                    signalled.add(stat.key)
                waiting[pidfd] = stat.key
                poller.register(pidfd, select.POLLIN)
            while waiting:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return TreeEnd(signalled, set(waiting.values()))
                for pidfd, _ in poller.poll(remaining * 1000):
                    poller.unregister(pidfd)
                    os.close(pidfd)
                    waiting.pop(pidfd)
    finally:
        for pidfd in waiting:
            os.close(pidfd)
