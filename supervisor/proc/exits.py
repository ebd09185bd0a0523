"""What a change source reports (`Change`), and the exits of watched processes through
pidfds in one epoll (`PidfdExits`, with the notice of a zombie's reaping where the kernel
gives it), which the netlink and procfs sources share."""

import dataclasses
import os
import select
import subprocess
import threading

NEW, CHANGED, LOST = "new", "changed", "lost"


@dataclasses.dataclass(frozen=True)
class Change:
    """NEW: pid appeared (parent: its parent when the source knows it, else 0).
    CHANGED: a watched pid exited or changed; read it again.
    LOST: the source missed news; look at everything again."""

    kind: str
    pid: int = 0
    parent: int = 0


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
