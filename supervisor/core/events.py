"""The timeline: typed events with increasing ids in a bounded history (`after=ID` replays)."""

import collections
import threading
import time

KINDS = (
    "start",
    "ready",
    "fork",
    "exit",
    "kill",
    "stop",
    "crash",
    "finished",
    "interrupt",
    "child",
    "zombie",
    "play",
    "check",
    "error",
    "info",
    "clients",
    "secret",
    "compare",
    "lesson",
    "watch",
)


class EventLog:
    def __init__(self, maxlen=2000):
        self._events = collections.deque(maxlen=maxlen)
        self._next_id = 1
        self._lock = threading.Lock()

    def append(self, server, kind, text, **details):
        """An event; `details` are further fields of it (a `watch` event's `mechanism`)."""
        if kind not in KINDS:
            raise ValueError(f"unknown event kind {kind!r}")
        with self._lock:
            event = {"id": self._next_id, "t": time.time(), "server": server, "kind": kind, "text": text}
            event.update(details)
            self._next_id += 1
            self._events.append(event)
            return event

    def after(self, event_id=0, limit=None):
        with self._lock:
            found = [e for e in self._events if e["id"] > event_id]
        return found[-limit:] if limit else found

    @property
    def last_id(self):
        with self._lock:
            return self._next_id - 1
