"""What a change source reports (`Change`), and the exits of watched processes through
pidfds in one epoll (`PidfdExits`), which the netlink and procfs sources share."""

import dataclasses
import os
import select
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


class PidfdExits:
    """pidfds of watched processes in one epoll; each exit is reported once."""

    needs_rescan = True  # news can be missed: the watcher repairs with a full scan now and then

    def __init__(self):
        self._epoll = None
        self._pids = {}  # pidfd -> pid
        self._pidfds = {}  # pid -> pidfd
        self._lock = threading.Lock()

    def open(self):
        self._epoll = select.epoll()
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
        try:
            self._epoll.unregister(pidfd)
        except (OSError, ValueError):
            pass
        os.close(pidfd)

    def _ready(self):
        """(descriptors that are not pidfds and are readable, [Change] for exited pids)."""
        others, exits = [], []
        with self._lock:
            for fd, _ in self._epoll.poll(0):
                pid = self._pids.get(fd)
                if pid is None:
                    others.append(fd)
                    continue
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
