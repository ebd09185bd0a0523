"""TreeWatcher: turns the process changes under each watched server into events.

    proc  {server, kind: fork | exit | status, pid, ppid, create_time, status, peer, t}
    stats {server, procs: [{pid, cpu_percent, rss}]}

How it learns about changes depends on the mechanism (see `choose_mechanism`):
- netlink: the kernel tells of every fork and exit at once; the watcher sleeps otherwise.
- procfs:  /proc is listed every `fast_interval` for new PIDs (each new PID's stat is read
           once); exits come through pidfds in one epoll, about 1 ms after they happen.
- psutil:  the portable fallback: children(recursive=True) every `psutil_interval`.
In every mode zombies are rechecked often (a reaped zombie emits `exit`), cpu/rss are read
on a slower cadence, and a full rescan now and then repairs anything missed.

Its cost grows with the number of watched processes, not with every process on the machine
(but for one directory listing per tick in procfs mode).
"""

import logging
import os
import select
import threading
import time

from supervisor import proctree

log = logging.getLogger(__name__)

MECHANISMS = ("netlink", "procfs", "psutil")


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

    @property
    def key(self):
        return (self.pid, self.create_time)


def choose_mechanism(wanted="auto"):
    """(name, netlink source or None). 'auto': netlink if it works, else procfs, else psutil."""
    if wanted not in ("auto", *MECHANISMS):
        raise ValueError(f"unknown watch mechanism {wanted!r}; choose one of auto, {', '.join(MECHANISMS)}")
    if wanted in ("auto", "netlink") and proctree.HAS_PROCFS:
        try:
            return "netlink", proctree.NetlinkEvents().open()
        except OSError as exc:
            if wanted == "netlink":
                raise
            log.info("netlink process events unavailable (%s); polling /proc", exc)
    if wanted in ("auto", "procfs") and proctree.HAS_PROCFS:
        return "procfs", None
    return "psutil", None


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
    ):
        self.publish = publish
        self.mechanism, self._netlink = choose_mechanism(mechanism)
        self.fast_interval = fast_interval
        self.psutil_interval = psutil_interval
        self.stats_interval = stats_interval
        self.zombie_interval = zombie_interval
        self.rescan_interval = rescan_interval
        self._lock = threading.RLock()
        self._roots = {}  # server -> root pid
        self._ports = {}  # server -> tcp port (for peers) or None
        self._nodes = {}  # pid -> Node
        self._zombies = set()  # pids
        self._exits = proctree.ExitNotices() if self.mechanism != "psutil" else None
        self._scanner = proctree.ProcScanner() if self.mechanism == "procfs" else None
        self._cpu = proctree.CpuMeter()
        self._me = os.getpid()
        self._next_stats = self._next_zombies = self._next_rescan = 0.0
        self.sweeps = 0

    # --- what is watched --------------------------------------------------------------

    def watch(self, server, pid, tcp_port=None):
        """Start watching a server whose root process is pid; reports what it has already."""
        stat = proctree.read_stat(pid)
        if stat is None:
            return False
        with self._lock:
            self._roots[server] = pid
            self._ports[server] = tcp_port
            root = Node(server, stat, root=True)
            self._nodes[pid] = root
            if self._exits is not None:
                self._exits.add(root.key)
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

    def servers(self):
        with self._lock:
            return dict(self._roots)

    def descendants(self, server):
        """[(pid, create_time, status)] of the server's known descendants (not the root)."""
        with self._lock:
            return [
                (n.pid, n.create_time, n.status)
                for n in self._nodes.values()
                if n.server == server and not n.root
            ]

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
                stat = proctree.read_stat(node.pid) if proctree.HAS_PROCFS else node.stat
                if stat is None or not proctree.same_time(stat.create_time, node.create_time):
                    stat = node.stat
                infos.append(proctree.info_from_stat(stat, self._cpu.percent(stat, now), now_wall, node.peer))
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
        """Wait for the next change (at most one tick), then process what changed."""
        now = time.monotonic()
        timeout = max(0.0, min(self._next_stats, self._next_zombies, self._next_rescan) - now)
        if self.mechanism == "netlink":
            timeout = min(timeout, 0.25)
            ready = self._wait([self._netlink, self._exits], timeout)
            if self._netlink in ready:
                self._on_netlink(self._netlink.drain())
            if self._exits in ready:
                self._on_exits(self._exits.ready())
        elif self.mechanism == "procfs":
            ready = self._wait([self._exits], min(timeout, self.fast_interval))
            if ready:
                self._on_exits(self._exits.ready())
            self._on_new_pids(self._scanner.new_pids())
        else:
            time.sleep(min(timeout, self.psutil_interval))
            self._psutil_pass()
        now = time.monotonic()
        if now >= self._next_zombies:
            self._next_zombies = now + self.zombie_interval
            self._check_zombies()
        if now >= self._next_rescan:
            self._next_rescan = now + self.rescan_interval
            if self.mechanism != "psutil":
                self.rescan()
        if now >= self._next_stats:
            self._next_stats = now + self.stats_interval
            self._publish_stats()
        self.sweeps += 1

    @staticmethod
    def _wait(sources, timeout):
        ready, _, _ = select.select(sources, [], [], timeout)
        return ready

    # --- what changed ----------------------------------------------------------------

    def _on_netlink(self, events):
        for kind, pid, parent in events:
            if kind == "overrun":
                self.rescan()
            elif kind == "fork":
                with self._lock:
                    interesting = parent in self._nodes
                if interesting:
                    self._consider(pid, parent_hint=parent)
            elif kind == "exit":
                with self._lock:
                    node = self._nodes.get(pid)
                if node is not None:
                    self._check(node)

    def _on_exits(self, keys):
        for pid, _ in keys:
            with self._lock:
                node = self._nodes.get(pid)
            if node is not None:
                self._check(node)

    def _on_new_pids(self, pids):
        with self._lock:
            if not self._roots:
                return
        for pid in pids:
            self._consider(pid)

    def _psutil_pass(self):
        with self._lock:
            roots = dict(self._roots)
        for server, root in roots.items():
            with self._lock:
                known = {n.pid: n for n in self._nodes.values() if n.server == server and not n.root}
            fresh, statuses = proctree.psutil_children(root, {pid: n.create_time for pid, n in known.items()})
            for pid, node in known.items():
                status = statuses.get(pid)
                if status is None:
                    if pid in fresh or not proctree.exists(node.pid, node.create_time):
                        self._forget(node)  # gone, or its PID now names another process
                elif status != node.status:
                    self._set_status(node, status)
            for stat in sorted(fresh.values(), key=lambda s: s.pid):
                self._adopt(server, stat)

    def _consider(self, pid, parent_hint=None):
        """A PID just appeared: adopt it if it belongs to a watched tree."""
        stat = proctree.read_stat(pid)
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
                peer = proctree.peer_of(stat.pid)
            node = Node(server, stat, peer=peer)
            self._nodes[stat.pid] = node
            if self._exits is not None and stat.state != "Z":
                self._exits.add(node.key)
        self._emit("fork", node)
        if stat.state == "Z":
            self._set_status(node, proctree.ZOMBIE)

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
        }
        self.publish("proc", {**event, "kind": "fork", "t": time.time()})
        self.publish("proc", {**event, "kind": "exit", "t": time.time()})

    def _check(self, node):
        """An exit notice for node: it is a zombie now, or gone (reaped)."""
        stat = proctree.read_stat(node.pid)
        if stat is None or not proctree.same_time(stat.create_time, node.create_time):
            self._forget(node)
            if stat is not None:
                self._consider(node.pid)  # the PID was reused by a new process
            return
        node.stat = stat
        if stat.state == "Z" and node.status != proctree.ZOMBIE:
            self._set_status(node, proctree.ZOMBIE)

    def _set_status(self, node, status):
        with self._lock:
            node.status = status
            if status == proctree.ZOMBIE:
                self._zombies.add(node.pid)
                if self._exits is not None:
                    self._exits.remove(node.key)
        if not node.root:
            self._emit("status", node)

    def _check_zombies(self):
        with self._lock:
            zombies = [self._nodes[pid] for pid in self._zombies if pid in self._nodes]
        for node in zombies:
            stat = proctree.read_stat(node.pid)
            if stat is None or not proctree.same_time(stat.create_time, node.create_time):
                self._forget(node)
            elif stat.ppid == self._me and not node.root:
                self._reap(node)

    def _reap(self, node):
        """An orphan of a server, reparented to us (the subreaper), has exited: reap it by
        its PID (never waitpid(-1), which would steal a Popen's exit status)."""
        try:
            done, _ = os.waitpid(node.pid, os.WNOHANG)
        except ChildProcessError:
            done = node.pid
        if done:
            self._forget(node)

    def _forget(self, node, announce=True):
        with self._lock:
            if self._nodes.get(node.pid) is not node:
                return
            del self._nodes[node.pid]
            self._zombies.discard(node.pid)
            if self._exits is not None:
                self._exits.remove(node.key)
        if announce and not node.root:
            self._emit("exit", node)

    def rescan(self):
        """One full scan: adopt anything missed, forget anything gone, reap orphans."""
        if self.mechanism == "psutil":
            self._psutil_pass()
            return
        with self._lock:  # what is known is read before /proc, so nothing newer is forgotten
            known = list(self._nodes.values())
            roots = set(self._roots.values())
        stats = proctree.parent_map()
        for node in known:
            stat = stats.get(node.pid)
            if stat is None or not proctree.same_time(stat.create_time, node.create_time):
                self._forget(node)
            elif stat.state == "Z" and node.status != proctree.ZOMBIE:
                self._set_status(node, proctree.ZOMBIE)
        changed = True
        while changed:  # adopt parents before their children
            changed = False
            for stat in sorted(stats.values(), key=lambda s: s.pid):
                server = self._server_of(stat)
                if server is not None:
                    self._adopt(server, stat)
                    changed = True
        for stat in proctree.children_of_me(stats):
            if stat.state == "Z" and (stat.session in roots or stat.pgrp in roots) and stat.pid not in roots:
                try:
                    os.waitpid(stat.pid, os.WNOHANG)
                except ChildProcessError:
                    pass

    def _publish_stats(self):
        now = time.monotonic()
        by_server = {}
        with self._lock:
            nodes = list(self._nodes.values())
        keep = set()
        for node in nodes:
            stat = proctree.read_stat(node.pid) if proctree.HAS_PROCFS else node.stat
            if stat is None or not proctree.same_time(stat.create_time, node.create_time):
                continue
            node.stat = stat
            node.ppid = stat.ppid
            keep.add((stat.pid, stat.start_ticks))
            by_server.setdefault(node.server, []).append(
                {
                    "pid": node.pid,
                    "cpu_percent": self._cpu.percent(stat, now),
                    "rss": stat.rss_pages * proctree.PAGE_SIZE,
                }
            )
        self._cpu.prune(keep)
        for server, procs in by_server.items():
            self.publish("stats", {"server": server, "procs": procs})

    def _emit(self, kind, node):
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
                "t": time.time(),
            },
        )

    def close(self):
        if self._netlink is not None:
            self._netlink.close()
            self._netlink = None
        if self._exits is not None:
            self._exits.close()
            self._exits = None
