"""Where news of processes comes from: three change sources behind one small interface,
one of them chosen once (`choose_source`) for the tree watcher. What they report is a
Change (exits.py).

    source.open()       ready to use, or OSError when it cannot work here
    source.fileno()     a descriptor that is readable when there is news, or None: drain
                        every `source.interval`
    source.drain()      [Change] since the last drain, without waiting
    source.close()
    source.watch(pid, create_time, root=False), source.forget(pid): the processes whose
                        exit (or change) matters, and the roots of the watched trees
    source.reports_reaps  True when a watched zombie's reaping is reported too (a CHANGED
                        for its PID), so nobody needs to re-read zombies to see them go

- netlink: the kernel's process-event connector tells of every fork and exit at once,
           once the kernel has accepted our subscription; it remembers which new PIDs it
           told of, so the watcher can catch it going deaf (`unreported`). (netlink.py)
- procfs:  /proc is listed for new PIDs (when the kernel's last PID moved); exits come
           through pidfds in one epoll, about 1 ms after they happen.
- psutil:  the portable fallback: children(recursive=True) of every watched root.
"""

import logging
import os
import threading

import psutil

from supervisor.proc.exits import CHANGED, LOST, NEW, Change, PidfdExits
from supervisor.proc.netlink import NetlinkSource
from supervisor.proc.stat import HAS_PROCFS, PROC, same_time

log = logging.getLogger(__name__)

MECHANISMS = ("netlink", "procfs", "psutil")
__all__ = ["CHANGED", "LOST", "MECHANISMS", "NEW", "Change", "NetlinkSource", "choose_source"]


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
