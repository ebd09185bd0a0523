"""TreeWatcher: turns the process changes under each watched server into events.

    proc  {server, kind: fork | exit | status | doing, pid, ppid, create_time, status, peer,
           doing, syscall, fd_target, activity, sleep_left_s, sleep_s, t}
    stats {server, procs: [{pid, cpu_percent, rss, status, doing, activity[, sleep_left_s, sleep_s]}]}
          (only the processes whose row changed since it was last sent)

It holds one change source, chosen once (supervisor.proc.sources: netlink, else /proc
listing with pidfd exits, else psutil), waits on it, and applies what it drains. A zombie
is learnt of from its exit event, and its reaping from the source too (a pidfd's reap
notice, or its absence from a psutil listing); only where the kernel gives no reap notice
are zombies looked for in their parents' lists of children (one read per parent every
100 ms, not one per zombie). cpu/rss are read once a second for live processes only. Where
the source can miss news a full rescan now and then repairs it. A source that
should have told of a process the rescan found (netlink gone deaf) is replaced by procfs,
with an event that says so.

What each process is doing (supervisor/core/activity.py) is read at every stats tick, for a
new child when it forks, and again for it and its parent a zombie tick later (a fork or an
exit changes what both do): a change of activity is a `doing` event, while a sleep's
countdown rides on the stats.

Its cost grows with the number of watched processes, not with every process on the machine
(but for one directory listing per tick with the procfs source). At about 510 lines it keeps
the adoption rules (parents first, reused PIDs, orphans reaped by PID, zombies), and the
reading of what processes do and the check of its source's hearing, which rest on them,
in one place.
"""

import logging
import os
import select
import threading
import time

from supervisor.core.activity import Activities
from supervisor.proc import sockets
from supervisor.proc.sources import CHANGED, LOST, NEW, choose_source
from supervisor.proc.stat import (
    PAGE_SIZE,
    ZOMBIE,
    CpuMeter,
    children_of,
    children_of_me,
    info_from_stat,
    parent_map,
    read_stat,
    reap,
    same_time,
    since_boot,
)

log = logging.getLogger(__name__)
HEARING_MARGIN = 0.1  # s: a process created this long before a drain was due in it


class Node:
    __slots__ = ("server", "pid", "create_time", "ppid", "status", "peer", "stat", "root")

    def __init__(self, server, stat, peer=None, root=False):
        self.server = server
        self.pid = stat.pid
        self.create_time = stat.create_time
        self.ppid = stat.ppid
        self.status = stat.status
        self.peer = peer
        self.stat = stat
        self.root = root


class TreeWatcher:
    def __init__(
        self,
        publish,
        mechanism="auto",
        fast_interval=0.02,
        psutil_interval=0.1,
        stats_interval=1.0,
        zombie_interval=0.1,
        rescan_interval=2.0,
        read_doing=True,
    ):
        self.publish = publish
        self.fast_interval = fast_interval
        self.source = choose_source(mechanism, fast_interval, psutil_interval)
        self.deaf_switches = 0  # times the source was found deaf and replaced
        self._too_young = []  # stats adopted by a rescan too soon after their fork to judge
        self.stats_interval = stats_interval
        self.zombie_interval = zombie_interval
        self.rescan_interval = rescan_interval
        self._lock = threading.RLock()
        self._roots = {}  # server -> root pid
        self._ports = {}  # server -> tcp port (for peers) or None
        self._nodes = {}  # pid -> Node
        self._zombies = set()  # pids
        self._cpu = CpuMeter()
        self._sent = {}  # pid -> its row last sent in `stats`
        self.activities = Activities(read_doing)
        self._recheck = set()  # pids to read again at the next zombie tick
        self._me = os.getpid()
        self._next_stats = self._next_zombies = self._next_rescan = 0.0
        self.sweeps = 0

    @property
    def mechanism(self):
        return self.source.name

    # --- what is watched --------------------------------------------------------------

    def watch(self, server, pid, tcp_port=None, child_delay_s=None):
        """Start watching a server whose root process is pid; reports what it has already.
        `child_delay_s`: how long each forked child sleeps before it answers (its countdown)."""
        stat = read_stat(pid)
        if stat is None:
            return False
        self.activities.set_delay(server, child_delay_s)
        with self._lock:
            self._roots[server] = pid
            self._ports[server] = tcp_port
            self._nodes[pid] = node = Node(server, stat, root=True)
            self.source.watch(pid, stat.create_time, root=True)
        self.activities.read(node, stat)
        self.rescan()
        return True

    def set_port(self, server, tcp_port):
        with self._lock:
            self._ports[server] = tcp_port

    def unwatch(self, server):
        """Forget a server's tree, reporting each process still known as exited."""
        with self._lock:
            self._roots.pop(server, None)
            self._ports.pop(server, None)
            for node in [n for n in self._nodes.values() if n.server == server]:
                self._forget(node, announce=not node.root)
        self.activities.forget_server(server)

    def descendants(self, server):
        """[(pid, create_time, status)] of the server's known descendants (not the root)."""
        with self._lock:
            return [
                (n.pid, n.create_time, n.status)
                for n in self._nodes.values()
                if n.server == server and not n.root
            ]

    def zombies(self, server):
        """[(pid, ppid, create_time)] of the server's zombies."""
        with self._lock:
            return sorted(
                (n.pid, n.ppid, n.create_time)
                for n in self._nodes.values()
                if n.server == server and n.status == ZOMBIE
            )

    def owner_of(self, pid):
        """(server, create_time, is_root) of a watched pid, or None."""
        with self._lock:
            node = self._nodes.get(pid)
            return (node.server, node.create_time, node.root) if node else None

    def snapshot(self, server):
        """ProcInfo of the server's tree, root first, freshly read."""
        now_wall = time.time()
        now = time.monotonic()
        with self._lock:
            nodes = sorted(
                (n for n in self._nodes.values() if n.server == server), key=lambda n: (not n.root, n.pid)
            )
            infos = []
            for node in nodes:
                stat = node.stat if node.status == ZOMBIE else self._fresh_stat(node) or node.stat
                if not self.activities.known(node):
                    self.activities.read(node, stat)
                fields = self.activities.fields(node, now_wall)
                infos.append(
                    info_from_stat(stat, self._cpu.percent(stat, now), now_wall, node.peer, **fields)
                )
            return infos

    # --- the loop --------------------------------------------------------------------

    def run(self, stop_event):
        log.info("tree watcher running (%s)", self.mechanism)
        while not stop_event.is_set():
            try:
                self.sweep()
            except Exception:  # the watcher must outlive any one bad reading
                log.exception("tree watcher sweep failed")
                stop_event.wait(0.1)
        self.close()

    def sweep(self):
        """Wait for news (at most one tick of the source), then apply what changed."""
        now = time.monotonic()
        zombie_tick = not self.source.reports_reaps or self._recheck  # else nothing to do at that tick
        next_zombies = self._next_zombies if zombie_tick else self._next_rescan
        timeout = max(0.0, min(self._next_stats, next_zombies, self._next_rescan) - now)
        self._wait(min(timeout, self.source.interval))
        drained_at = since_boot()
        self.apply(self.source.drain())
        now = time.monotonic()
        if now >= self._next_zombies:
            self._next_zombies = now + self.zombie_interval
            if not self.source.reports_reaps:
                self._check_zombies()
            self._read_again()
        if now >= self._next_rescan:
            self._next_rescan = now + self.rescan_interval
            if self.source.needs_rescan:
                self._check_hearing(self.rescan(), drained_at)
        if now >= self._next_stats:
            self._next_stats = now + self.stats_interval
            self._publish_stats()
        self.sweeps += 1

    def _wait(self, timeout):
        fileno = self.source.fileno()
        if fileno is None:
            time.sleep(timeout)
        else:
            select.select([fileno], [], [], timeout)

    # --- what changed ----------------------------------------------------------------

    def apply(self, changes):
        """Take in what the source reported (a list of supervisor.proc.sources.Change)."""
        for change in changes:
            if change.kind == NEW:
                with self._lock:
                    wanted = change.parent in self._nodes if change.parent else bool(self._roots)
                if wanted:
                    self._consider(change.pid, parent_hint=change.parent or None)
            elif change.kind == CHANGED:
                with self._lock:
                    node = self._nodes.get(change.pid)
                if node is not None:
                    self._check(node)
            elif change.kind == LOST:
                self.rescan()

    def _consider(self, pid, parent_hint=None):
        """A PID just appeared: adopt it if it belongs to a watched tree."""
        stat = read_stat(pid)
        if stat is None:
            if parent_hint is not None:
                self._missed(pid, parent_hint)
            return
        server = self._server_of(stat)
        if server is not None:
            self._adopt(server, stat)

    def _server_of(self, stat):
        with self._lock:
            if stat.pid in self._nodes or stat.pid in self._roots.values():
                return None
            parent = self._nodes.get(stat.ppid)
            if parent is not None:
                return parent.server
            for server, root in self._roots.items():
                if stat.session == root or stat.pgrp == root:
                    return server
        return None

    def _adopt(self, server, stat):
        peer = None
        with self._lock:
            if server not in self._roots or stat.pid in self._nodes:
                return
            if self._ports.get(server):
                peer = sockets.peer_of(stat.pid)
            node = Node(server, stat, peer=peer)
            self._nodes[stat.pid] = node
            self.source.watch(stat.pid, stat.create_time)
            self._recheck.update((stat.pid, stat.ppid))
        self.activities.read(node, stat)
        self._emit("fork", node)
        if stat.state == "Z":
            self._set_status(node, ZOMBIE)

    def _missed(self, pid, parent):
        """A child forked and was gone before it could be read: still report both."""
        with self._lock:
            owner = self._nodes.get(parent)
            if owner is None:
                return
            server = owner.server
        event = {
            "server": server,
            "pid": pid,
            "ppid": parent,
            "create_time": None,
            "status": "dead",
            "peer": None,
            **self.activities.gone(pid),
        }
        self.publish("proc", {**event, "kind": "fork", "t": time.time()})
        self.publish("proc", {**event, "kind": "exit", "t": time.time()})

    def _check(self, node):
        """The source says node exited or changed: it is gone (reaped), or a new status."""
        stat = read_stat(node.pid)
        if stat is None or not same_time(stat.create_time, node.create_time):
            self._forget(node)
            if stat is not None:
                self._consider(node.pid)  # the PID was reused by a new process
            self._collect_orphans_of(node.pid)
            return
        node.stat = stat
        if stat.state == "Z" and stat.ppid == self._me and not node.root and reap(node.pid):
            self._forget(node)  # an orphan of a server, reparented to us (the subreaper), collected
            return
        if stat.status != node.status:
            self._set_status(node, stat.status)
        if stat.state == "Z":
            self._collect_orphans_of(node.pid)

    def _set_status(self, node, status):
        with self._lock:
            node.status = status
            if status == ZOMBIE:
                self._zombies.add(node.pid)
        if status == ZOMBIE:
            self.activities.mark_zombie(node)
        else:
            self.activities.read(node)
        if not node.root:
            self._emit("status", node)

    def _collect_orphans_of(self, parent):
        """parent has exited: its zombie children were reparented to us (the subreaper),
        and only we will reap them."""
        with self._lock:
            zombies = [self._nodes.get(pid) for pid in self._zombies]
            orphans = [node for node in zombies if node is not None and node.ppid == parent]
        for node in orphans:
            stat = read_stat(node.pid)
            if stat is None or not same_time(stat.create_time, node.create_time):
                self._forget(node)
            elif stat.ppid == self._me and not node.root and reap(node.pid):
                self._forget(node)

    def _check_zombies(self):
        """Where the kernel gives no reap notice: a zombie missing from its parent's list of
        children was reaped (one read per parent); a parent gone left its zombies to us."""
        by_parent = {}
        with self._lock:
            for node in filter(None, map(self._nodes.get, self._zombies)):
                by_parent.setdefault(node.ppid, []).append(node)
        for parent, nodes in by_parent.items():
            children = children_of(parent)
            if children is None:
                self._collect_orphans_of(parent)
                continue
            for node in nodes:
                if node.pid not in children:
                    self._check(node)

    def _forget(self, node, announce=True):
        with self._lock:
            if self._nodes.get(node.pid) is not node:
                return
            del self._nodes[node.pid]
            self._zombies.discard(node.pid)
            self.source.forget(node.pid)
            self._recheck.add(node.ppid)
        if announce and not node.root:
            self._emit("exit", node)

    def _read_again(self):
        """Read what the processes of the last forks and exits do now (a child that has
        reached its sleep, a parent back in accept)."""
        with self._lock:  # a zombie does nothing more: it is not read again
            nodes = [n for n in map(self._nodes.get, self._recheck) if n is not None and n.status != ZOMBIE]
            self._recheck.clear()
        for node in nodes:
            stat = self._fresh_stat(node)
            if stat is not None and self.activities.read(node, stat):
                self._emit("doing", node)

    def rescan(self):
        """One full scan: adopt anything missed, forget anything gone, reap orphans.
        Returns the stats of the processes it adopted."""
        with self._lock:  # what is known is read before /proc, so nothing newer is forgotten
            known = list(self._nodes.values())
            roots = set(self._roots.values())
        stats = parent_map()
        for node in known:
            stat = stats.get(node.pid)
            if stat is None or not same_time(stat.create_time, node.create_time):
                self._forget(node)
            elif stat.state == "Z" and node.status != ZOMBIE:
                self._set_status(node, ZOMBIE)
        adopted = []
        changed = True
        while changed:  # adopt parents before their children
            changed = False
            for stat in sorted(stats.values(), key=lambda s: s.pid):
                server = self._server_of(stat)
                if server is not None:
                    self._adopt(server, stat)
                    adopted.append(stat)
                    changed = True
        for stat in children_of_me(stats):
            if stat.state == "Z" and (stat.session in roots or stat.pgrp in roots) and stat.pid not in roots:
                reap(stat.pid)
        return adopted

    def _check_hearing(self, adopted, drained_at):
        """The rescan adopted processes the source should have told of before its last
        drain: unless the source says it overflowed meanwhile, it has gone deaf. One
        adopted too soon after its fork to judge is judged at the next rescan."""
        unreported = getattr(self.source, "unreported", None)
        if unreported is None:
            return
        before = drained_at - HEARING_MARGIN
        candidates = self._too_young + adopted
        self._too_young = [stat for stat in candidates if stat.started >= before]
        missed = unreported(candidates, before)
        if not missed:
            return
        changes = self.source.drain()
        self.apply(changes)
        if any(change.kind == LOST for change in changes):
            return  # an overrun it knows of, not deafness
        self._replace_source(missed)

    def _replace_source(self, missed):
        """Watch by /proc listing from now on, every known process handed over."""
        with self._lock:
            deaf = self.source
            self.source = choose_source("procfs", self.fast_interval)
            for node in self._nodes.values():
                self.source.watch(node.pid, node.create_time, root=node.root)
            self.deaf_switches += 1
        deaf.close()
        pids = ", ".join(str(stat.pid) for stat in missed[:5]) + (" …" if len(missed) > 5 else "")
        text = (
            f"watching by {self.source.name} now: {deaf.name} stopped reporting new processes "
            f"(it never told of PID {pids}, found by the rescan)"
        )
        log.warning(text)
        self.publish("event", {"server": None, "kind": "watch", "text": text, "mechanism": self.source.name})

    def _fresh_stat(self, node):
        """node's stat read now, or None when its process is gone or its PID reused."""
        stat = read_stat(node.pid)
        if stat is None or not same_time(stat.create_time, node.create_time):
            return None
        return stat

    def _publish_stats(self):
        """cpu, rss and what each live process does, sent only for those whose row changed
        since it was last sent; a zombie is not read (its numbers never change)."""
        now = time.monotonic()
        now_wall = time.time()
        by_server = {}
        with self._lock:
            nodes = list(self._nodes.values())
        keep = {(n.pid, n.stat.start_ticks) for n in nodes if n.status == ZOMBIE}
        for node in nodes:
            if node.status == ZOMBIE:
                continue
            stat = self._fresh_stat(node)
            if stat is None:
                continue
            node.stat = stat
            node.ppid = stat.ppid
            keep.add((stat.pid, stat.start_ticks))
            if self.activities.read(node, stat):
                self._emit("doing", node)
            item = {
                "pid": node.pid,
                "cpu_percent": self._cpu.percent(stat, now),
                "rss": stat.rss_pages * PAGE_SIZE,
                "status": stat.status,
                **self.activities.for_stats(node, now_wall),
            }
            if self._sent.get(node.pid) != item:
                self._sent[node.pid] = item
                by_server.setdefault(node.server, []).append(item)
        self._cpu.prune(keep)
        self.activities.prune(keep)
        with self._lock:
            self._sent = {pid: item for pid, item in self._sent.items() if pid in self._nodes}
        for server, procs in by_server.items():
            self.publish("stats", {"server": server, "procs": procs})

    def _emit(self, kind, node):
        fields = self.activities.gone(node.pid) if kind == "exit" else self.activities.fields(node)
        self.publish(
            "proc",
            {
                "server": node.server,
                "kind": kind,
                "pid": node.pid,
                "ppid": node.ppid,
                "create_time": round(node.create_time, 2),
                "status": node.status if kind != "exit" else "exited",
                "peer": node.peer,
                **fields,
                "t": time.time(),
            },
        )

    def close(self):
        self.source.close()
