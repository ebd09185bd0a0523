"""The supervisor's way out to the message queue: the Manager's events wait in a bounded
queue, and one thread emits them through Socket.IO — to this process's own browsers and,
published, to every viewer worker's — with a heartbeat every second.

The watcher and the server threads only append to the queue, so a slow or vanished Redis
never holds them up. When a publish fails, the queue is marked unreachable: events still
reach this process's own browsers at once (emitted with `ignore_queue`), each one's number
is used up (the workers will see the gap and ask for a fresh snapshot), and the heartbeat
tries Redis again after 0.5, 1, 2, 4, then every 5 s. The pages here are told through the
`feed` event, and `state` goes into their snapshot.
"""

import collections
import logging
import threading
import time

from supervisor.web.message_queue import HEARTBEAT, HEARTBEAT_ROOM

log = logging.getLogger(__name__)
HEARTBEAT_EVERY = 1.0
RETRY_FIRST = 0.5
RETRY_MOST = 5.0
LIMIT = 10_000  # events waiting; past it the oldest are dropped (and counted as a gap)
UNREACHABLE = "message queue unreachable: pages served by viewer workers are paused (this page stays live)"
LIVE = {"ok": True, "text": None}


class Outbox:
    def __init__(self, socketio, queue, namespace, kinds):
        self.socketio = socketio
        self.queue = queue
        self.namespace = namespace
        self.kinds = frozenset(kinds)
        self.state = dict(LIVE)
        self.dropped = 0
        self._items = collections.deque()
        self._ready = threading.Condition()
        self._closed = False
        self._retry = RETRY_FIRST
        self._next_heartbeat = 0.0
        self._thread = None

    def __call__(self, kind, payload):
        """The Manager's subscriber: queue the event, never wait."""
        if kind not in self.kinds:
            return
        with self._ready:
            if len(self._items) >= LIMIT:
                self._items.popleft()
                self.dropped += 1
                self.queue.skip()
            self._items.append((kind, payload))
            self._ready.notify()

    def start(self):
        self._thread = threading.Thread(target=self._run, name="forkwatch-outbox", daemon=True)
        self._thread.start()

    def close(self, timeout=2.0):
        """Emit what is queued (within `timeout`), then stop."""
        with self._ready:
            self._closed = True
            self._ready.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    def _next(self):
        with self._ready:
            while not self._items and not self._closed:
                wait = self._next_heartbeat - time.monotonic()
                if wait <= 0:
                    return None
                self._ready.wait(wait)
            return self._items.popleft() if self._items else None

    def _run(self):
        while True:
            item = self._next()
            if item is None and self._closed:
                return
            if item is not None:
                self._emit(*item)
            if time.monotonic() >= self._next_heartbeat:
                self._heartbeat()

    def _emit(self, kind, payload):
        if not self.state["ok"]:
            self.queue.skip()
            self.socketio.emit(kind, payload, namespace=self.namespace, ignore_queue=True)
            return
        self.socketio.emit(kind, payload, namespace=self.namespace)
        if not self.queue.published:
            self._changed(False)

    def _heartbeat(self):
        self.socketio.emit(HEARTBEAT, {"t": time.time()}, namespace=self.namespace, to=HEARTBEAT_ROOM)
        if self.queue.published:
            self._retry = RETRY_FIRST
            self._next_heartbeat = time.monotonic() + HEARTBEAT_EVERY
            if not self.state["ok"]:
                self._changed(True)
        else:
            if self.state["ok"]:
                self._changed(False)
            self._next_heartbeat = time.monotonic() + self._retry
            self._retry = min(RETRY_MOST, self._retry * 2)

    def _changed(self, ok):
        self.state = dict(LIVE) if ok else {"ok": False, "text": UNREACHABLE}
        if ok:
            log.info("message queue reachable again: publishing to the viewer workers")
        else:
            log.warning("message queue unreachable: events reach this process's own pages only")
        self.socketio.emit(
            "feed", {**self.state, "t": time.time()}, namespace=self.namespace, ignore_queue=True
        )
