"""What each watched process is doing, kept for the tree watcher: one BlockingReader, the
last reading of every process, and the fields its tree row carries (doing.live_fields).

A reading is kept by (pid, start_ticks) with the time it was made, so a row built between
two readings still counts a sleep down from the kernel's last word; the fields of any other
reading are worked out once and kept with it. The dicts handed out are shared: copy, never
change them. A forked child's
countdown also knows its server's per-child delay (`set_delay`).

The reader's caches belong to one thread at a time: every reading and every prune takes
the lock, so the watcher's loop and a snapshot asked for by a screen can both read.
"""

import dataclasses
import threading
import time

from supervisor.core import doing
from supervisor.proc.blocking import GONE, ZOMBIE, Blocking, BlockingReader

EMPTY = dict.fromkeys(doing.FIELDS)  # the row of a watcher that does not read


def _key(node):
    return (node.pid, node.stat.start_ticks)


class Activities:
    """The last reading of each process under watch; `enabled=False` reads nothing."""

    def __init__(self, enabled=True):
        self.enabled = enabled
        self._reader = BlockingReader(every_wchan=False) if enabled else None
        self._lock = threading.Lock()
        self._readings = {}  # (pid, start_ticks) -> [Blocking, monotonic time read, its fields or None]
        self._delays = {}  # server -> seconds each forked child waits before it answers

    def set_delay(self, server, delay_s):
        self._delays[server] = delay_s

    def forget_server(self, server):
        self._delays.pop(server, None)

    def read(self, node, stat=None):
        """Read node's process now; True when what it does changed (doing.same_activity)."""
        if not self.enabled:
            return False
        with self._lock:
            return self._keep(node, self._reader.read(node.pid, stat))

    def mark_zombie(self, node):
        """node exited and waits to be reaped: no reading needed. True when that is news."""
        if not self.enabled:
            return False
        with self._lock:
            return self._keep(node, Blocking(node.pid, ZOMBIE))

    def _keep(self, node, block):
        if block.state == GONE:
            return False  # its exit is reported as such
        key = _key(node)
        before = self._readings.get(key)
        self._readings[key] = [block, time.monotonic(), None]
        return before is None or not doing.same_activity(before[0], block)

    def __len__(self):
        return len(self._readings)

    def known(self, node):
        return _key(node) in self._readings

    def fields(self, node, now_wall=None):
        """node's row fields from its last reading ({field: None} before the first)."""
        found = self._readings.get(_key(node))
        if found is None:
            return dict(EMPTY)
        block, read_at, kept = found
        if kept is not None:
            return kept
        if block.left_s is not None:
            left = max(0.0, block.left_s - (time.monotonic() - read_at))
            block = dataclasses.replace(block, left_s=left)
        delay = None if node.root else self._delays.get(node.server)
        age = max(0.0, (now_wall if now_wall is not None else time.time()) - node.create_time)
        fields = doing.live_fields(block, delay, age)
        if fields["activity"] not in (doing.SLEEP, doing.STOPPED):
            found[2] = fields  # only a sleep's words change between readings: the rest is kept
        return fields

    def for_stats(self, node, now_wall=None):
        """What the stats carry of what node does: the sentence (a countdown changes it every
        second) and its activity; the countdown's numbers only while it sleeps."""
        if not self.enabled:
            return {}
        fields = self.fields(node, now_wall)
        carried = {"doing": fields["doing"], "activity": fields["activity"]}
        if fields["sleep_left_s"] is not None:
            carried.update(sleep_left_s=fields["sleep_left_s"], sleep_s=fields["sleep_s"])
        return carried

    def gone(self, pid):
        """The row fields of a process that has exited."""
        return doing.live_fields(Blocking(pid, GONE)) if self.enabled else dict(EMPTY)

    def prune(self, keep):
        """Forget every process whose (pid, start_ticks) is not in keep."""
        with self._lock:
            for key in [key for key in self._readings if key not in keep]:
                del self._readings[key]
            if self.enabled:
                self._reader.prune(keep)
