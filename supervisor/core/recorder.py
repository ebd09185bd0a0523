"""Records what the dashboard publishes: a writer thread fed by a bounded queue, commits
batched at least every `commit_interval` (a SIGKILL loses well under a second), snapshots
every `snapshot_interval` s, the size cap; recordings begin and end by recording_rule.py.

    recorder = Recorder(os.path.join(state_dir, "recordings.sqlite3"), snapshot=manager.snapshot)
    recorder.start()
    manager.subscribe(recorder.append)          # every event, as published
    recorder.hide(name, spec.secret, secret)    # a new round's secret, before its server spawns
    recorder.reveal(name)                       # the instructor revealed it
    recorder.store.list() / .get(id) / .events(id, …) / .state_at(id, t) / .export(id)
    recorder.close()                            # at shutdown, after the servers stopped

`append(kind, payload)` never waits for the disk: it stamps the time and queues the pair;
when the queue is full the event is dropped and counted (`dropped`), except `server`
events (the rule needs them; a few per command). Payloads are not copied: a publisher must
not change one after publishing it. `stats` events (every second per server) are not
stored: the snapshots carry each process's CPU and memory. `begin(title)` and `end()`
begin and end a recording by hand.

Secrets: `hide(server, kind, value)` applies to every event not yet written and every
snapshot from then on (see redaction.py); `reveal(server)` only to events published after
it, so nothing appended before the reveal is written with the secret in it.
"""

import collections
import json
import logging
import math
import sqlite3
import threading
import time

from supervisor.core import recordings as rows
from supervisor.core.recording_rule import RecordingRule, Tally, default_title
from supervisor.core.recordings import Recordings
from supervisor.core.recordings_file import open_file
from supervisor.core.redaction import HiddenSecrets, scrub

log = logging.getLogger(__name__)

MB = 1024 * 1024
NOT_RECORDED = frozenset({"stats"})
ALWAYS_QUEUED = frozenset({"server"})
BATCH_ITEMS = 5000
HOUSEKEEPING_BUDGET_S = 0.1
_CONTROL = object()


class Recorder:
    """`path`: the recordings file (opened, checked and migrated here; a file that cannot be
    opened at all turns recording off: `store` is None and `unavailable` says why).
    `snapshot`: a callable returning the dashboard's state as a JSON-like dict, called on
    the writer thread. `queue_limit` counts events plus the lines of console events."""

    def __init__(
        self,
        path,
        snapshot=None,
        max_bytes=200 * MB,
        queue_limit=20000,
        commit_interval=0.25,
        snapshot_interval=5.0,
        end_after=5.0,
    ):
        self.path = path
        self._snapshot_source = snapshot
        self.max_bytes = max_bytes
        self.queue_limit = queue_limit
        self.commit_interval = commit_interval
        self.snapshot_interval = snapshot_interval
        self.end_after = end_after
        self.dropped = 0  # events not queued because the queue was full
        self.lost = 0  # events queued but not written (the file refused them)
        self._lock = threading.Lock()
        self._items = collections.deque()
        self._weight = 0
        self._wake = threading.Event()
        self._closed = False
        self._thread = None
        self._secrets = HiddenSecrets()
        self._rule = RecordingRule()
        self._active = None
        self._tally = Tally()
        self._last_id = 0
        self._last_t = None
        self._last_snapshot = -math.inf
        self._cap_warned = False
        self._errors = 0
        self._ended_in_batch = []
        try:
            self._conn, self.moved_aside = open_file(path)
            rows.end_interrupted(self._conn)
            self._last_id = self._conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
        except (OSError, sqlite3.Error) as exc:
            log.error("recording is off: the recordings file %s cannot be opened (%s)", path, exc)
            self._conn, self.moved_aside, self.store = None, None, None
            self.unavailable = f"the recordings file cannot be opened ({exc})"
            self._closed = True
            return
        self.unavailable = None
        self.store = Recordings(path)

    # --- the caller's side (never waits for the disk) -----------------------------------

    def append(self, kind, payload):
        if kind in NOT_RECORDED or self._closed or not isinstance(payload, dict):
            return
        lines = payload.get("lines") if kind == "output" else None
        weight = 1 + (len(lines) if isinstance(lines, list) else 0)
        with self._lock:
            if self._weight + weight > self.queue_limit and kind not in ALWAYS_QUEUED:
                self.dropped += 1
                return
            self._weight += weight
            # Stamped under the lock: an event queued after a drain is never older than it.
            self._items.append((time.time(), kind, payload))
            crowded = self._weight > self.queue_limit // 2
        if crowded:
            self._wake.set()

    def _control(self, action, *args):
        done = threading.Event()
        with self._lock:
            if self._closed:
                done.set()
                return done
            self._items.append((time.time(), _CONTROL, (action, args, done)))
            self._closed = action == "close"
        self._wake.set()
        return done

    def begin(self, title=None):
        """Begin a recording now (ending the one under way, if any)."""
        if title is not None:
            rows.clean_title(title)
        return self._control("begin", title)

    def end(self):
        """End the recording under way now."""
        return self._control("end")

    def hide(self, server, kind, value):
        """From now on, hide `value` (the secret of `server`'s new round) in what is written."""
        replaced = self._secrets.hide(server, kind, value)
        if replaced is not None:
            self._control("forget", replaced)  # the old round is over

    def reveal(self, server):
        """Events published from now on may show `server`'s secret."""
        revealed = self._secrets.reveal(server)
        if revealed is not None:
            self._control("forget", revealed)

    def flush(self, timeout=10.0):
        """Wait until everything appended so far is committed; False on timeout."""
        return self._control("flush").wait(timeout)

    @property
    def active_id(self):
        return self._active

    # --- lifecycle -------------------------------------------------------------------------

    def start(self):
        if self._thread is None and self._conn is not None:
            self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
            self._thread.start()
        return self

    def close(self, timeout=10.0):
        """End the recording under way, commit everything, stop the writer thread."""
        if self._conn is None:
            return True
        if self._thread is None:
            self.start()
        done = self._control("close")
        finished = done.wait(timeout)
        self._thread.join(timeout)
        return finished and not self._thread.is_alive()

    @property
    def running(self):
        return self._thread is not None and self._thread.is_alive()

    # --- the writer thread -------------------------------------------------------------------

    def _run(self):
        closing = False
        try:
            while not closing:
                self._wake.wait(self.commit_interval)
                self._wake.clear()
                with self._lock:
                    mark = time.time()  # every event queued from now on is at least this late
                    items, self._items, self._weight = self._items, collections.deque(), 0
                while items:
                    batch = [items.popleft() for _ in range(min(BATCH_ITEMS, len(items)))]
                    closing = self._write(batch) or closing
                if not closing:
                    self._housekeeping(mark)
        except Exception:
            log.exception("the recorder's writer thread stopped; nothing more is recorded")
            raise
        finally:
            with self._lock:
                self._closed = True
            self._conn.close()

    def _write(self, batch):
        """Write one batch in one transaction; returns True when it held the close order."""
        closing = False
        done = []
        self._ended_in_batch = []
        try:
            with rows.transaction(self._conn):
                pending = []
                for t, kind, payload in batch:
                    if kind is _CONTROL:
                        action, args, flag = payload
                        done.append(flag)
                        closing = self._apply(action, args, t, pending) or closing
                        continue
                    self._rule, change = self._rule.after(kind, payload, t)
                    if change == "begin":
                        self._begin(default_title(t, payload), t, pending)
                    if self._active is not None:
                        self._queue_row(pending, t, kind, payload)
                    if change == "end":
                        self._end(pending)
                self._store_rows(pending)
        except sqlite3.Error as exc:
            self.lost += sum(1 for item in batch if item[1] is not _CONTROL)
            self._log_error(f"could not write {len(batch)} events", exc)
            self._repair_after_rollback()
        finally:
            for flag in done:
                flag.set()
        return closing

    def _repair_after_rollback(self):
        """A recording begun in a rolled-back batch does not exist (start over); one ended
        in it is ended again, on its own."""
        try:
            if (
                self._active is not None
                and not self._conn.execute(
                    "SELECT 1 FROM recordings WHERE id = ?", (self._active,)
                ).fetchone()
            ):
                self._active = None
                self._rule = self._rule.stopped()
            with rows.transaction(self._conn):
                for recording_id, ended in self._ended_in_batch:
                    rows.finish_recording(self._conn, recording_id, ended)
        except sqlite3.Error as exc:
            self._log_error("could not repair after a failed write", exc)

    def _apply(self, action, args, t, pending):
        if action == "begin":
            self._begin(args[0] or default_title(t), t, pending)
        elif action in ("end", "close") and self._active is not None:
            self._end(pending)
        elif action == "forget":
            self._secrets.forget(args[0])
        return action == "close"

    def _queue_row(self, pending, t, kind, payload):
        try:
            text = json.dumps(scrub(payload, self._secrets.current), separators=(",", ":"), default=str)
        except (TypeError, ValueError) as exc:
            self.lost += 1
            self._log_error(f"could not encode an event of kind {kind!r}", exc)
            return
        pending.append((self._active, t, kind, text))
        self._tally.count(kind, payload)
        self._last_t = t

    def _store_rows(self, pending):
        if pending:
            self._last_id = rows.insert_events(self._conn, pending)
            pending.clear()
        if self._active is not None:
            tally = self._tally
            rows.save_tally(self._conn, self._active, tally.servers, tally.forks, tally.kills)

    def _begin(self, title, t, pending):
        if self._active is not None:
            self._end(pending)
        self._active = rows.create_recording(self._conn, title, t)
        self._tally = Tally()
        self._last_t = t
        self._last_snapshot = -math.inf
        self._rule = self._rule.started()
        log.info("recording %d started: %s", self._active, title)

    def _end(self, pending):
        self._store_rows(pending)
        rows.finish_recording(self._conn, self._active, self._last_t)
        self._ended_in_batch.append((self._active, self._last_t))
        log.info("recording %d ended", self._active)
        self._active = None
        self._rule = self._rule.stopped()

    def _housekeeping(self, mark):
        """The timed work between batches: the linger end, a snapshot, the size cap."""
        self._ended_in_batch = []
        try:
            if self._rule.expired(time.time(), self.end_after) and self._active is not None:
                with rows.transaction(self._conn):
                    self._end([])
            if self._active is not None and mark - self._last_snapshot >= self.snapshot_interval:
                self._take_snapshot(mark)
            deadline = time.monotonic() + HOUSEKEEPING_BUDGET_S
            while time.monotonic() < deadline and self._trim_step():
                pass
        except sqlite3.Error as exc:
            self._log_error("housekeeping failed", exc)
            self._repair_after_rollback()

    def _take_snapshot(self, mark):
        self._last_snapshot = mark
        if self._snapshot_source is None:
            return
        try:
            blob = rows.encode_state(scrub(self._snapshot_source(), self._secrets.current))
        except Exception as exc:  # the caller's callback: any failure is logged, never fatal
            self._log_error("the snapshot source failed", exc)
            return
        with rows.transaction(self._conn):
            rows.insert_snapshot(self._conn, self._active, mark, self._last_id, blob)

    def _trim_step(self):
        if rows.purge_step(self._conn):
            return True
        if rows.used_bytes(self._conn) <= self.max_bytes:
            self._cap_warned = False
            return False
        with rows.transaction(self._conn):
            dropped = rows.mark_oldest_for_cap(self._conn, self._active)
        if dropped is not None:
            log.info(
                "recording %d removed: the recordings file is over its %.1f MB cap",
                dropped,
                self.max_bytes / MB,
            )
            return True
        if not self._cap_warned:
            self._cap_warned = True
            log.warning(
                "the recording under way alone is over the %.1f MB cap; it is kept", self.max_bytes / MB
            )
        return False

    def _log_error(self, what, exc):
        self._errors += 1
        if self._errors <= 3 or self._errors % 100 == 0:
            log.error("recorder: %s (%s; %d errors so far)", what, exc, self._errors)
