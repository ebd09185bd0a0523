"""A viewer worker's feed: whether the supervisor's events reach this worker, and every
browser's snapshot in its right place among them.

- Order. python-socketio's listener relays each event to the browsers under `lock`
  (supervisor/web/message_queue.py); a snapshot is fetched from the supervisor and sent
  under the same lock. So every event a browser received before its snapshot is in it,
  and every event after it comes after it: none falls between. New connections wait for
  their snapshot in a batch (one fetch for all who connected meanwhile).
- Gaps. The supervisor numbers what it publishes. A number that does not follow the last
  one (messages lost while Redis was away, or a new supervisor) makes the worker fetch a
  fresh snapshot and send it to every browser before it relays that message.
- Pauses. Every half second the worker asks Redis (PING) and looks at the time since the
  supervisor was last heard (it publishes a heartbeat every second). Redis unreachable, or
  nothing heard for 3 s, pauses the feed: every page is told why (`feed {ok, text}`) —
  the queue unreachable, the supervisor gone (its /healthz does not answer), or the
  queue's listener still reconnecting. The next message from the supervisor ends the
  pause with a fresh snapshot for every browser.
"""

import logging
import threading
import time

import redis

from supervisor.web.remote import Unreachable

log = logging.getLogger(__name__)
CHECK_EVERY = 0.5
SILENCE = 3.0
RESYNC_RETRY = 1.0
QUEUE_DOWN = "live updates paused: message queue unreachable"
SUPERVISOR_GONE = "supervisor gone: live updates stopped (its servers were stopped with it)"
WAITING = "live updates paused: waiting for the message queue"
LIVE = {"ok": True, "text": None}


class Feed:
    def __init__(self, supervisor, queue_url):
        self.socketio = None  # attach(): the worker's Socket.IO and its LiveNamespace
        self.namespace = None
        self.supervisor = supervisor
        self.redis = redis.Redis.from_url(queue_url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self.lock = threading.RLock()
        self.state = {"ok": False, "text": WAITING}
        self.host = None  # the supervisor's queue identity, and its last number
        self.number = None
        self.heard = time.monotonic()
        self.resyncs = 0
        self.last_snapshot = None  # the latest the supervisor gave (a page opened while it is gone)
        self._resync_failed = 0.0
        self._pending = {}  # sid -> role, waiting for a first snapshot
        self._wake = threading.Condition()
        self._closed = threading.Event()

    # --- the listener's side (called with the lock held) --------------------------------

    def received(self, host, number):
        self.heard = time.monotonic()
        gap = host != self.host or self.number is None or number != self.number + 1
        if gap and self.host is not None:
            log.info(
                "message queue: expected %s, got %s from %s; resyncing", self._expected(), number, host[:8]
            )
        self.host, self.number = host, number
        if gap or not self.state["ok"]:
            self._resync()

    def _expected(self):
        return None if self.number is None else self.number + 1

    def _resync(self):
        """Send every browser a fresh snapshot, the feed live again."""
        if time.monotonic() - self._resync_failed < RESYNC_RETRY:
            return
        roles = self.namespace.connected_roles()
        if roles:
            try:
                snapshot = self.fetch_snapshot()
            except Unreachable as exc:
                self._resync_failed = time.monotonic()
                log.warning("resync: %s", exc.message)
                return
            self.state = dict(LIVE)
            self._send(snapshot, roles)
            self.resyncs += 1
        elif not self.state["ok"]:
            self.state = dict(LIVE)
        log.info("live: relaying the supervisor's events (%d browsers given a fresh snapshot)", len(roles))

    def fetch_snapshot(self):
        self.last_snapshot = self.supervisor.snapshot()
        return self.last_snapshot

    def _send(self, snapshot, roles):
        by_role = {}
        for sid, role in roles.items():
            by_role.setdefault(role, []).append(sid)
        for role, sids in by_role.items():
            payload = {**snapshot, "role": role, "feed": dict(self.state)}
            self.socketio.emit(
                "snapshot", payload, namespace=self.namespace.namespace, to=sids, ignore_queue=True
            )

    # --- new connections ------------------------------------------------------------------

    def welcome(self, sid, role):
        """A new connection's snapshot, sent soon by the feed's own thread."""
        with self._wake:
            self._pending[sid] = role
            self._wake.notify()

    def _welcome_loop(self):
        manager = self.socketio.server.manager
        namespace = self.namespace.namespace
        while not self._closed.is_set():
            with self._wake:
                while not self._pending and not self._closed.is_set():
                    self._wake.wait(1.0)
                batch, self._pending = self._pending, {}
            ready = {sid: role for sid, role in batch.items() if manager.is_connected(sid, namespace)}
            waiting = {
                sid: role
                for sid, role in batch.items()
                if sid not in ready and manager.is_pre_connected(sid, namespace)
            }
            if ready:
                self._welcome(ready)
            if waiting:  # still in their connect handler: next round
                time.sleep(0.005)
                with self._wake:
                    self._pending.update(waiting)

    def _welcome(self, roles):
        with self.lock:
            try:
                snapshot = self.fetch_snapshot()
            except Unreachable as exc:
                log.warning("a new browser's snapshot: %s", exc.message)
                snapshot = None
            if snapshot is None:
                self._pause(SUPERVISOR_GONE)
                return
            self._send(snapshot, roles)

    # --- pauses -----------------------------------------------------------------------------

    def _pause(self, text):
        """Tell every page why live updates stopped (called with the lock held)."""
        if self.state == {"ok": False, "text": text}:
            return
        log.warning("%s", text)
        self.state = {"ok": False, "text": text}
        self.socketio.emit(
            "feed", {**self.state, "t": time.time()}, namespace=self.namespace.namespace, ignore_queue=True
        )

    def _queue_reachable(self):
        try:
            return self.redis.ping()
        except redis.RedisError:
            return False

    def _watch_loop(self):
        while not self._closed.wait(CHECK_EVERY):
            reachable = self._queue_reachable()
            silent = time.monotonic() - self.heard > SILENCE
            if reachable and not silent:
                continue
            if not reachable:
                text = QUEUE_DOWN
            else:
                text = WAITING if self.supervisor.healthy() else SUPERVISOR_GONE
            with self.lock:
                if time.monotonic() - self.heard > SILENCE or not reachable:
                    self._pause(text)

    # --- life -------------------------------------------------------------------------------

    def attach(self, socketio, namespace):
        self.socketio = socketio
        self.namespace = namespace

    def start(self, spawn):
        spawn(self._welcome_loop)
        spawn(self._watch_loop)

    def close(self):
        self._closed.set()
        with self._wake:
            self._wake.notify_all()
        self.redis.close()
