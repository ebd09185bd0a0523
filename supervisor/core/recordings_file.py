"""Opening the recordings file: its schema and versions, the migrations, and a broken or
foreign file moved aside (`recordings.sqlite3.broken-<time>`) so a fresh one can start.

The schema's version is SQLite's `PRAGMA user_version`. `MIGRATIONS[n]` takes a file from
version n-1 to n, in one transaction together with the new version number, so a file is
always at one whole version. A file is moved aside, never repaired, when it is not SQLite,
is truncated or damaged, holds tables that are not ours, or was written by a newer
forkwatch; what was wrong is logged in one sentence.
"""

import logging
import os
import sqlite3
import time

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
TABLES = frozenset({"recordings", "events", "snapshots"})
SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT_S = 10.0


def _create_tables(conn):
    """Version 1: recordings, their events and their snapshots."""
    conn.execute(
        "CREATE TABLE recordings (id INTEGER PRIMARY KEY, title TEXT NOT NULL,"
        " started REAL NOT NULL, ended REAL)"
    )
    conn.execute(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, recording INTEGER NOT NULL,"
        " t REAL NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL)"
    )
    conn.execute("CREATE INDEX events_by_time ON events (recording, t)")
    conn.execute(
        "CREATE TABLE snapshots (id INTEGER PRIMARY KEY, recording INTEGER NOT NULL,"
        " t REAL NOT NULL, event_id INTEGER NOT NULL, state BLOB NOT NULL)"
    )
    conn.execute("CREATE INDEX snapshots_by_time ON snapshots (recording, t)")


def _add_tallies(conn):
    """Version 2: each recording keeps its servers, forks and kills (the list reads them
    without scanning events) and a `deleted` mark (a delete returns at once; the events
    are purged in small steps afterwards)."""
    for column in (
        "servers TEXT NOT NULL DEFAULT '[]'",
        "forks INTEGER NOT NULL DEFAULT 0",
        "kills INTEGER NOT NULL DEFAULT 0",
        "deleted INTEGER NOT NULL DEFAULT 0",
    ):
        conn.execute(f"ALTER TABLE recordings ADD COLUMN {column}")
    conn.execute(
        "UPDATE recordings SET"
        " servers = (SELECT COALESCE(json_group_array(name), '[]') FROM (SELECT DISTINCT"
        "   json_extract(payload, '$.name') AS name FROM events WHERE recording = recordings.id"
        "   AND kind = 'server' ORDER BY id)),"
        " forks = (SELECT COUNT(*) FROM events WHERE recording = recordings.id AND kind = 'proc'"
        "   AND json_extract(payload, '$.kind') = 'fork'),"
        " kills = (SELECT COUNT(*) FROM events WHERE recording = recordings.id AND kind = 'event'"
        "   AND json_extract(payload, '$.kind') = 'kill')"
    )


MIGRATIONS = {1: _create_tables, 2: _add_tallies}


def connect(path):
    """A connection in autocommit mode (transactions are explicit), WAL, normal sync: a
    commit survives the process being killed; only a power cut can lose the last ones."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def schema_version(conn):
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn, target=SCHEMA_VERSION):
    """Run the migrations from the file's version up to `target`; returns the steps run."""
    version = schema_version(conn)
    if version == 0:
        # Free pages go back to the file system after deletes (set before any table).
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("PRAGMA journal_mode = WAL")
    steps = []
    for step in range(version + 1, target + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[step](conn)
            conn.execute(f"PRAGMA user_version = {int(step)}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        steps.append(step)
    return steps


def diagnose(path):
    """Why the file at `path` cannot be used as it is (a sentence), or None when it can
    (also when it does not exist yet or is empty)."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            header = handle.read(100)
    except FileNotFoundError:
        return None
    if size == 0:
        return None
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        return "it is not an SQLite database"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return f"it is damaged (its header gives a page size of {page_size})"
    pages = int.from_bytes(header[28:32], "big")
    header_valid = header[24:28] == header[92:96]
    if header_valid and pages and size < pages * page_size:
        return f"it is truncated ({size} of {pages * page_size} bytes)"
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_S)
        try:
            return _diagnose_contents(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return f"it is damaged ({exc})"


def _diagnose_contents(conn):
    version = schema_version(conn)
    tables = {
        row[0]
        for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not row[0].startswith("sqlite_")
    }
    if version > SCHEMA_VERSION:
        return (
            f"it was written by a newer forkwatch (schema version {version}; this one reads {SCHEMA_VERSION})"
        )
    foreign = sorted(tables - TABLES)
    if foreign or (tables and version == 0):
        return f"it holds tables that are not forkwatch's ({', '.join(foreign or sorted(tables))})"
    if version and tables != TABLES:
        return f"it lacks the tables {', '.join(sorted(TABLES - tables))}"
    problems = [row[0] for row in conn.execute("PRAGMA quick_check")]
    if problems != ["ok"]:
        return f"it is damaged ({problems[0]})"
    return None


def move_aside(path, reason):
    """Rename the file (and its -wal and -shm) to `<path>.broken-<time>`; returns the new path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = f"{path}.broken-{stamp}"
    counter = 1
    while os.path.exists(target):
        counter += 1
        target = f"{path}.broken-{stamp}-{counter}"
    os.replace(path, target)
    for suffix in ("-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.replace(path + suffix, target + suffix)
    log.error(
        "recordings file %s cannot be used: %s; moved it aside to %s and started a fresh one",
        path,
        reason,
        target,
    )
    return target


def open_file(path):
    """A migrated, checked connection to the recordings file at `path`, and the path a
    broken file was moved to (or None)."""
    moved = None
    reason = diagnose(path)
    if reason is not None:
        moved = move_aside(path, reason)
    conn = connect(path)
    try:
        migrate(conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        if moved is not None:
            raise  # a fresh file that cannot be written: the folder is the problem
        moved = move_aside(path, f"its migration failed ({exc})")
        conn = connect(path)
        migrate(conn)
    return conn, moved
