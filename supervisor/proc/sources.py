"""Where news of processes comes from: three change sources behind one small interface,
one of them chosen once (`choose_source`) for the tree watcher.

    source.open()       ready to use, or OSError when it cannot work here
    source.fileno()     a descriptor that is readable when there is news, or None: drain
                        every `source.interval`
    source.drain()      [Change] since the last drain, without waiting
    source.close()
    source.watch(pid, create_time, root=False), source.forget(pid): the processes whose
                        exit (or change) matters, and the roots of the watched trees
    source.reports_reaps  True when a watched zombie's reaping is reported too (a CHANGED
                        for its PID), so nobody needs to re-read zombies to see them go

- netlink: the kernel's process-event connector tells of every fork and exit at once.
- procfs:  /proc is listed for new PIDs (when the kernel's last PID moved); exits come
           through pidfds in one epoll, about 1 ms after they happen.
- psutil:  the portable fallback: children(recursive=True) of every watched root.
"""

import dataclasses
import errno
import logging
import os
import select
import socket
import struct
import subprocess
import threading
import time

import psutil

from supervisor.proc.stat import HAS_PROCFS, PROC, same_time

log = logging.getLogger(__name__)

MECHANISMS = ("netlink", "procfs", "psutil")
NEW, CHANGED, LOST = "new", "changed", "lost"


@dataclasses.dataclass(frozen=True)
class Change:
    """NEW: pid appeared (parent: its parent when the source knows it, else 0).
    CHANGED: a watched pid exited or changed; read it again.
    LOST: the source missed news; look at everything again."""

    kind: str
    pid: int = 0
    parent: int = 0


def choose_source(wanted="auto", interval=0.02, psutil_interval=0.1):
    """An open source. 'auto': netlink if it works, else procfs, else psutil."""
    if wanted not in ("auto", *MECHANISMS):
        raise ValueError(f"unknown watch mechanism {wanted!r}; choose one of auto, {', '.join(MECHANISMS)}")
    if wanted in ("auto", "netlink") and HAS_PROCFS:
        try:
            return NetlinkSource().open()
        except OSError as exc:
            if wanted == "netlink":
                raise
            log.info("netlink process events unavailable (%s); polling /proc", exc)
    if wanted in ("auto", "procfs") and HAS_PROCFS:
        return ProcfsSource(interval).open()
    return PsutilSource(psutil_interval).open()


_reap_notices = None


def pidfd_reports_reaping():
    """True when this kernel's pidfd tells of its process's reaping (POLLHUP once the
    zombie is collected; recent kernels), found once with a child of our own."""
    global _reap_notices
    if _reap_notices is None:
        child = subprocess.Popen(["/bin/true"] if os.path.exists("/bin/true") else ["true"])
        pidfd = os.pidfd_open(child.pid)
        try:
            select.select([pidfd], [], [], 5.0)  # readable once it has exited
            exited = select.poll()
            exited.register(pidfd, select.POLLIN)
            before = exited.poll(0)
            child.wait()
            after = exited.poll(100)
            _reap_notices = not any(e & select.POLLHUP for _, e in before) and any(
                e & select.POLLHUP for _, e in after
            )
        finally:
            os.close(pidfd)
    return _reap_notices


class PidfdExits:
    """pidfds of watched processes in one epoll; each exit is reported once, and where the
    kernel tells (pidfd_reports_reaping), a zombie's reaping once more: its pidfd stays in
    the epoll listening for that alone."""

    needs_rescan = True  # news can be missed: the watcher repairs with a full scan now and then

    def __init__(self):
        self._epoll = None
        self._pids = {}  # pidfd -> pid
        self._pidfds = {}  # pid -> pidfd
        self._exited = set()  # pidfds of zombies, kept for the notice of their reaping
        self._lock = threading.Lock()
        self.reports_reaps = False

    def open(self):
        self._epoll = select.epoll()
        self.reports_reaps = pidfd_reports_reaping()
        return self

    def fileno(self):
        return self._epoll.fileno()

    def watch(self, pid, create_time, root=False):
        with self._lock:
            if pid in self._pidfds:
                return
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:
                return
            self._pids[pidfd] = pid
            self._pidfds[pid] = pidfd
            self._epoll.register(pidfd, select.EPOLLIN)

    def forget(self, pid):
        with self._lock:
            pidfd = self._pidfds.pop(pid, None)
            if pidfd is not None:
                self._drop(pidfd)

    def _drop(self, pidfd):
        self._pids.pop(pidfd, None)
        self._exited.discard(pidfd)
        try:
            self._epoll.unregister(pidfd)
        except (OSError, ValueError):
            pass
        os.close(pidfd)

    def _ready(self):
        """(descriptors that are not pidfds and are readable, [Change] for exited pids)."""
        others, exits = [], []
        with self._lock:
            for fd, events in self._epoll.poll(0):
                pid = self._pids.get(fd)
                if pid is None:
                    others.append(fd)
                    continue
                if self.reports_reaps and not events & select.EPOLLHUP and fd not in self._exited:
                    self._epoll.modify(fd, 0)  # exited, not yet reaped: now only its reaping (HUP)
                    self._exited.add(fd)
                else:
                    del self._pidfds[pid]
                    self._drop(fd)
                exits.append(Change(CHANGED, pid))
        return others, exits

    def close(self):
        with self._lock:
            for pidfd in list(self._pids):
                self._drop(pidfd)
            self._pidfds.clear()
            if self._epoll is not None:
                self._epoll.close()
                self._epoll = None


class ProcfsSource(PidfdExits):
    """New PIDs by listing /proc: only when the kernel's last allocated PID (the fifth field
    of /proc/loadavg, one small read) has moved, so on a quiet machine a drain costs a few
    microseconds whatever the number of processes."""

    name = "procfs"

    def __init__(self, interval=0.02):
        super().__init__()
        self.interval = interval
        self._seen = set()
        self._last_pid = None

    def drain(self):
        _, changes = self._ready()
        return changes + [Change(NEW, pid) for pid in sorted(self._new_pids())]

    def _new_pids(self):
        try:
            with open(f"{PROC}/loadavg", "rb") as handle:
                last = handle.read().rsplit(None, 1)[-1]
        except (OSError, IndexError):
            last = None
        if last is not None and last == self._last_pid:
            return set()
        self._last_pid = last
        listing = set(os.listdir(PROC))
        fresh = listing - self._seen
        self._seen = listing
        return {int(name) for name in fresh if name.isdigit()}


NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2
PROC_EVENT_FORK = 0x00000001
PROC_EVENT_EXIT = 0x80000000
NLMSG_HDR = struct.Struct("=IHHII")
CN_MSG = struct.Struct("=IIIIHH")
PROC_EVENT_HDR = struct.Struct("=IIQ")  # what, cpu, timestamp_ns
FORK_BODY = struct.Struct("=IIII")  # parent pid, parent tgid, child pid, child tgid
EXIT_BODY = struct.Struct("=IIII")  # pid, tgid, exit code, exit signal


class NetlinkSource(PidfdExits):
    """Fork and exit notices for every process on the machine, as they happen.

    Needs CAP_NET_ADMIN (root). Inside a container's own PID or network namespace the
    kernel may deliver nothing at all, so `open()` proves it works with a test child.
    """

    name = "netlink"
    interval = 0.25

    def __init__(self, self_test_timeout=0.1):
        super().__init__()
        self.sock = None
        self._self_test_timeout = self_test_timeout

    def open(self):
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
            sock.bind((0, CN_IDX_PROC))
            self.sock = sock
            self._control(PROC_CN_MCAST_LISTEN)
            sock.setblocking(False)
            if not self._self_test(self._self_test_timeout):
                raise OSError("the process-event connector stayed silent")
            super().open()
            self._epoll.register(sock.fileno(), select.EPOLLIN)
        except OSError:
            self.close()
            raise
        return self

    def _control(self, op):
        body = struct.pack("=I", op)
        cn = CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(body), 0) + body
        self.sock.send(NLMSG_HDR.pack(NLMSG_HDR.size + len(cn), 3, 0, 0, 0) + cn)

    def _self_test(self, timeout):
        child = subprocess.Popen(["/bin/true"] if os.path.exists("/bin/true") else ["true"])
        child.wait()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            select.select([self.sock], [], [], max(0.0, deadline - time.monotonic()))
            if any(c.kind == NEW and c.pid == child.pid for c in self._receive()):
                return True
        return False

    def drain(self):
        others, exits = self._ready()
        return (self._receive() if others else []) + exits

    def _receive(self):
        changes = []
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return changes
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # overrun: the watcher looks at everything again
                    changes.append(Change(LOST))
                    continue
                raise
            offset = 0
            while offset + NLMSG_HDR.size <= len(data):
                length = NLMSG_HDR.unpack_from(data, offset)[0]
                if length < NLMSG_HDR.size:
                    break
                change = self._parse(data, offset + NLMSG_HDR.size)
                if change:
                    changes.append(change)
                offset += (length + 3) & ~3

    @staticmethod
    def _parse(data, at):
        at += CN_MSG.size
        if at + PROC_EVENT_HDR.size > len(data):
            return None
        what = PROC_EVENT_HDR.unpack_from(data, at)[0]
        at += PROC_EVENT_HDR.size
        if what == PROC_EVENT_FORK:
            _, parent_tgid, child_pid, child_tgid = FORK_BODY.unpack_from(data, at)
            if child_pid == child_tgid:  # a new process, not a new thread
                return Change(NEW, child_tgid, parent_tgid)
        elif what == PROC_EVENT_EXIT:
            pid, tgid, _, _ = EXIT_BODY.unpack_from(data, at)
            if pid == tgid:
                return Change(CHANGED, tgid)
        return None

    def close(self):
        super().close()
        if self.sock is not None:
            try:
                self._control(PROC_CN_MCAST_IGNORE)
            except OSError:
                pass
            self.sock.close()
            self.sock = None


class PsutilSource:
    """The portable fallback: every drain lists each watched root's descendants with psutil
    (known ones cost one status read each) and reports what appeared, ended or changed."""

    name = "psutil"
    needs_rescan = False  # every drain looks at whole trees
    reports_reaps = True  # a reaped zombie is missing from the next listing

    def __init__(self, interval=0.1):
        self.interval = interval
        self._roots = set()
        self._known = {}  # pid -> [create_time, last status seen]
        self._lock = threading.Lock()

    def open(self):
        return self

    def fileno(self):
        return None

    def watch(self, pid, create_time, root=False):
        with self._lock:
            if root:
                self._roots.add(pid)
            else:
                self._known.setdefault(pid, [create_time, None])

    def forget(self, pid):
        with self._lock:
            self._roots.discard(pid)
            self._known.pop(pid, None)

    def drain(self):
        with self._lock:
            roots, known = list(self._roots), dict(self._known)
        changes, present = [], set()
        for root in roots:
            try:
                procs = psutil.Process(root).children(recursive=True)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            for proc in procs:
                present.add(proc.pid)
                if proc.pid not in known:
                    changes.append(Change(NEW, proc.pid))
                elif self._changed(proc, known[proc.pid]):
                    changes.append(Change(CHANGED, proc.pid))
        changes += [Change(CHANGED, pid) for pid in known if pid not in present]
        return changes

    @staticmethod
    def _changed(proc, seen):
        """True when proc is no longer the process seen before, or its status is not the
        one seen last (the first reading counts: the watcher compares it with its own)."""
        try:
            if not same_time(proc.create_time(), seen[0]):
                return True  # that PID now names another process
            status = proc.status()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return True
        previous, seen[1] = seen[1], status
        return status != previous

    def close(self):
        with self._lock:
            self._roots.clear()
            self._known.clear()
