"""What is in the recordings file: the queries a replay needs (`Recordings`: list, one
recording, events in a range, the state at a time, rename, delete, the export) and the
writes of the recorder's writer thread (new recording, events, snapshots, tallies, the
purge of deleted recordings and the size cap), as functions of its connection.

Refusals raise CommandError, as the manager's commands do: 400 for bad input, 404 for no
such recording, 409 for deleting the recording under way.

Times are seconds since the epoch (`time.time()`), as in the live events. A snapshot's row
says: "the state at `t`, including every event up to `event_id`". The state at a time T is
the newest snapshot at or before T plus the events after its `event_id` up to T. Events
published while a snapshot was being taken may also be part of it (a window of
milliseconds), so a replay applies state changes by key (a pid's fork is one fork).
"""

import json
import logging
import sqlite3
import time
import unicodedata
import zlib

from supervisor.core.process import CommandError
from supervisor.core.recordings_file import connect

log = logging.getLogger(__name__)

EVENTS_LIMIT = 1000
EVENTS_LIMIT_MAX = 20000
STATE_EVENTS_MAX = 50000
TITLE_LIMIT = 120
PURGE_CHUNK = 5000
VACUUM_PAGES = 2000
EXPORT_FORMAT = "forkwatch-recording"


_META = "id, title, started, ended, servers, forks, kills"


def clean_title(title):
    if not isinstance(title, str):
        raise CommandError("title must be text", 400)
    title = " ".join(title.split())
    if not title or len(title) > TITLE_LIMIT:
        raise CommandError(f"title must be 1 to {TITLE_LIMIT} characters", 400)
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in title):
        raise CommandError("title must not contain control characters", 400)
    return title


def _whole_number(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CommandError(f"{name} must be a whole number, 0 or more", 400)
    return value


def _time(value, name):
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise CommandError(f"{name} must be a time in seconds", 400)
    return float(value)


def _kind(value):
    if not isinstance(value, str) or not value.isidentifier() or len(value) > 40:
        raise CommandError("kind must be the name of an event kind (server, proc, output, event, …)", 400)
    return value


def _meta(row, now):
    rid, title, started, ended, servers, forks, kills = row
    return {
        "id": rid,
        "title": title,
        "started": started,
        "ended": ended,
        "duration": round((ended if ended is not None else now) - started, 3),
        "servers": json.loads(servers),
        "forks": forks,
        "kills": kills,
        "recording": ended is None,
    }


def _event(row):
    return {"id": row[0], "t": row[1], "kind": row[2], "payload": json.loads(row[3])}


class Recordings:
    """Read-side queries plus rename and delete, each on its own short connection, so any
    thread may call them while the recorder's writer thread writes (WAL)."""

    def __init__(self, path):
        self.path = path

    def _connect(self):
        return connect(self.path)

    def _query(self, sql, args=()):
        conn = self._connect()
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def list(self):
        now = time.time()
        rows = self._query(f"SELECT {_META} FROM recordings WHERE deleted = 0 ORDER BY started DESC, id DESC")
        return [_meta(row, now) for row in rows]

    def get(self, recording_id):
        _whole_number(recording_id, "recording id")
        rows = self._query(f"SELECT {_META} FROM recordings WHERE id = ? AND deleted = 0", (recording_id,))
        if not rows:
            raise CommandError(f"there is no recording {recording_id}", 404)
        return _meta(rows[0], time.time())

    def events(self, recording_id, after=None, until=None, by="id", limit=EVENTS_LIMIT, kind=None):
        """Events of a recording in (after, until], by event id (`by="id"`, exact paging:
        pass the last id seen as `after`) or by time (`by="t"`), at most `limit`; with
        `kind`, only events of that kind (the timeline's are "event")."""
        limit = min(_whole_number(limit, "limit"), EVENTS_LIMIT_MAX)
        where = "recording = ?" + (" AND kind = ?" if kind is not None else "")
        args = [recording_id] + ([_kind(kind)] if kind is not None else [])
        if by == "id":
            low = _whole_number(after, "after") if after is not None else 0
            high = _whole_number(until, "until") if until is not None else None
            sql = f"SELECT id, t, kind, payload FROM events WHERE {where} AND id > ?"
            args.append(low)
            if high is not None:
                sql += " AND id <= ?"
                args.append(high)
            sql += " ORDER BY id LIMIT ?"
        elif by == "t":
            low = _time(after, "after") if after is not None else float("-inf")
            high = _time(until, "until") if until is not None else float("inf")
            sql = f"SELECT id, t, kind, payload FROM events WHERE {where} AND t > ? AND t <= ? ORDER BY t, id LIMIT ?"
            args += [low, high]
        else:
            raise CommandError('by must be "id" or "t"', 400)
        self.get(recording_id)
        args.append(limit)
        return [_event(row) for row in self._query(sql, args)]

    def state_at(self, recording_id, t):
        """{"t", "snapshot": {"t", "event_id", "state"} or None, "events": [...]}: the
        newest snapshot at or before t, and the events after it up to t."""
        self.get(recording_id)
        t = _time(t, "t")
        conn = self._connect()
        try:
            row = conn.execute(
                "SELECT t, event_id, state FROM snapshots WHERE recording = ? AND t <= ?"
                " ORDER BY t DESC LIMIT 1",
                (recording_id, t),
            ).fetchone()
            if row is None:
                snapshot = None
                rows = conn.execute(
                    "SELECT id, t, kind, payload FROM events WHERE recording = ? AND t <= ?"
                    " ORDER BY id LIMIT ?",
                    (recording_id, t, STATE_EVENTS_MAX),
                ).fetchall()
            else:
                snapshot = {"t": row[0], "event_id": row[1], "state": decode_state(row[2])}
                # Events after a snapshot were appended after its time: the index on
                # (recording, t) keeps this a short range, however long the recording.
                rows = conn.execute(
                    "SELECT id, t, kind, payload FROM events WHERE recording = ? AND t >= ?"
                    " AND t <= ? AND id > ? ORDER BY id LIMIT ?",
                    (recording_id, row[0], t, row[1], STATE_EVENTS_MAX),
                ).fetchall()
        finally:
            conn.close()
        return {"t": t, "snapshot": snapshot, "events": [_event(r) for r in rows]}

    def rename(self, recording_id, title):
        title = clean_title(title)
        self.get(recording_id)
        conn = self._connect()
        try:
            conn.execute(
                "UPDATE recordings SET title = ? WHERE id = ? AND deleted = 0", (title, recording_id)
            )
        finally:
            conn.close()
        return self.get(recording_id)

    def delete(self, recording_id):
        """Hide a finished recording at once; the recorder purges its rows in small steps."""
        meta = self.get(recording_id)
        if meta["recording"]:
            raise CommandError(
                f"recording {recording_id} is still being recorded; it ends when every server has stopped",
                409,
            )
        conn = self._connect()
        try:
            conn.execute("UPDATE recordings SET deleted = 1 WHERE id = ?", (recording_id,))
        finally:
            conn.close()
        return {"deleted": recording_id}

    def export(self, recording_id):
        """One recording as a JSON-ready document: metadata, every event, every snapshot.
        The self-contained HTML export inlines this document."""
        meta = self.get(recording_id)
        conn = self._connect()
        try:
            conn.execute("BEGIN")  # one consistent view while the writer goes on
            events = conn.execute(
                "SELECT id, t, kind, payload FROM events WHERE recording = ? ORDER BY id", (recording_id,)
            ).fetchall()
            snapshots = conn.execute(
                "SELECT t, event_id, state FROM snapshots WHERE recording = ? ORDER BY t", (recording_id,)
            ).fetchall()
            conn.execute("COMMIT")
        finally:
            conn.close()
        return {
            "format": EXPORT_FORMAT,
            "version": 1,
            "recording": meta,
            "events": [_event(row) for row in events],
            "snapshots": [
                {"t": t, "event_id": eid, "state": decode_state(state)} for t, eid, state in snapshots
            ],
        }


# --- state blobs --------------------------------------------------------------------------


def encode_state(state):
    return zlib.compress(json.dumps(state, separators=(",", ":"), default=str).encode("ascii"), 6)


def decode_state(blob):
    return json.loads(zlib.decompress(blob))


# --- writes (the recorder's writer thread; rename and delete above excepted) ---------------


def transaction(conn):
    """`with transaction(conn):` BEGIN IMMEDIATE … COMMIT, or ROLLBACK on an exception."""
    return _Transaction(conn)


class _Transaction:
    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, kind, exc, tb):
        if kind is None:
            self.conn.execute("COMMIT")
        else:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        return False


def create_recording(conn, title, started):
    cursor = conn.execute(
        "INSERT INTO recordings (title, started) VALUES (?, ?)", (clean_title(title), started)
    )
    return cursor.lastrowid


def insert_events(conn, rows):
    """rows: (recording, t, kind, payload_json). Returns the last event id written."""
    conn.executemany("INSERT INTO events (recording, t, kind, payload) VALUES (?, ?, ?, ?)", rows)
    return conn.execute("SELECT last_insert_rowid()").fetchone()[0]


def insert_snapshot(conn, recording_id, t, event_id, state_blob):
    conn.execute(
        "INSERT INTO snapshots (recording, t, event_id, state) VALUES (?, ?, ?, ?)",
        (recording_id, t, event_id, state_blob),
    )


def save_tally(conn, recording_id, servers, forks, kills):
    conn.execute(
        "UPDATE recordings SET servers = ?, forks = ?, kills = ? WHERE id = ?",
        (json.dumps(servers), forks, kills, recording_id),
    )


def finish_recording(conn, recording_id, ended):
    conn.execute("UPDATE recordings SET ended = ? WHERE id = ?", (ended, recording_id))


def end_interrupted(conn):
    """Recordings left open by a dashboard that was killed end at their last event.
    Returns their ids."""
    ids = [row[0] for row in conn.execute("SELECT id FROM recordings WHERE ended IS NULL")]
    with transaction(conn):
        for rid in ids:
            conn.execute(
                "UPDATE recordings SET ended = COALESCE((SELECT MAX(t) FROM events WHERE recording = ?),"
                " started) WHERE id = ?",
                (rid, rid),
            )
            log.warning(
                "recording %d was interrupted (forkwatch did not stop cleanly); it ends at its last event",
                rid,
            )
    return ids


def used_bytes(conn):
    """Bytes the file's live pages take (free pages not counted)."""
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return (pages - free) * conn.execute("PRAGMA page_size").fetchone()[0]


def mark_oldest_for_cap(conn, keep_id):
    """Mark the oldest finished recording (never `keep_id`) deleted; returns its id or None."""
    row = conn.execute(
        "SELECT id FROM recordings WHERE deleted = 0 AND ended IS NOT NULL AND id IS NOT ?"
        " ORDER BY started, id LIMIT 1",
        (keep_id,),
    ).fetchone()
    if row is None:
        return None
    conn.execute("UPDATE recordings SET deleted = 1 WHERE id = ?", (row[0],))
    return row[0]


def purge_step(conn):
    """One short step of removing deleted recordings' rows and giving free pages back to
    the file system. Returns True while there is more to do."""
    row = conn.execute("SELECT id FROM recordings WHERE deleted = 1 LIMIT 1").fetchone()
    if row is not None:
        with transaction(conn):
            for table in ("events", "snapshots"):
                removed = conn.execute(
                    f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE recording = ? LIMIT ?)",
                    (row[0], PURGE_CHUNK),
                ).rowcount
                if removed:
                    return True
            conn.execute("DELETE FROM recordings WHERE id = ?", (row[0],))
        return True
    if conn.execute("PRAGMA freelist_count").fetchone()[0]:
        conn.execute(f"PRAGMA incremental_vacuum({VACUUM_PAGES})").fetchall()
        return bool(conn.execute("PRAGMA freelist_count").fetchone()[0])
    return False
