"""Opening the recordings file: fresh, migrated from version 1, and broken or foreign
files moved aside with a clear message — never a crash."""

import glob
import json
import logging
import os
import sqlite3

import pytest

from supervisor.core import recordings_file
from supervisor.core.recorder import Recorder
from tests.core import published as ev


def moved_files(path):
    return sorted(glob.glob(path + ".broken-*"))


def record_a_little(make_recorder, path):
    recorder = make_recorder(path)
    for kind, payload in (
        ev.server("forking_clock", "STARTING"),
        *[ev.proc("forking_clock", "fork") for _ in range(300)],
        ev.output("forking_clock", *[f"line {i} " + "x" * 80 for i in range(300)]),
    ):
        recorder.append(kind, payload)
    assert recorder.close()


def assert_fresh_and_working(path, make_recorder):
    recorder = make_recorder(path)
    recorder.append(*ev.server("clock", "STARTING"))
    assert recorder.flush()
    listed = recorder.store.list()
    assert len(listed) == 1 and listed[0]["servers"] == ["clock"]
    return recorder


def test_a_fresh_file_is_wal_with_incremental_vacuum_at_the_current_version(recordings_path):
    conn, moved = recordings_file.open_file(recordings_path)
    try:
        assert moved is None
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
        assert recordings_file.schema_version(conn) == recordings_file.SCHEMA_VERSION
    finally:
        conn.close()


def test_a_version_1_file_is_migrated_and_keeps_its_recordings(recordings_path, make_recorder):
    conn = recordings_file.connect(recordings_path)
    assert recordings_file.migrate(conn, target=1) == [1]
    conn.execute("INSERT INTO recordings (id, title, started, ended) VALUES (7, 'monday', 100.0, 160.0)")
    rows = [
        (7, 100.0, *ev.server("forking_clock", "STARTING")),
        (7, 101.0, *ev.proc("forking_clock", "fork")),
        (7, 102.0, *ev.proc("forking_clock", "fork")),
        (7, 103.0, *ev.timeline("forking_clock", "kill", "SIGKILL sent to PID 40001")),
        (7, 104.0, *ev.server("web", "STARTING")),
        (7, 105.0, *ev.server("forking_clock", "STOPPED")),
    ]
    conn.executemany(
        "INSERT INTO events (recording, t, kind, payload) VALUES (?, ?, ?, ?)",
        [(r, t, kind, json.dumps(payload)) for r, t, kind, payload in rows],
    )
    conn.close()

    recorder = make_recorder(recordings_path)
    assert recorder.moved_aside is None
    [meta] = recorder.store.list()
    assert meta["id"] == 7 and meta["title"] == "monday" and meta["duration"] == 60.0
    assert (meta["servers"], meta["forks"], meta["kills"]) == (["forking_clock", "web"], 2, 1)
    assert [e["t"] for e in recorder.store.events(7)] == [100.0, 101.0, 102.0, 103.0, 104.0, 105.0]
    check = sqlite3.connect(recordings_path)
    assert recordings_file.schema_version(check) == 2
    check.close()


def test_the_migration_runner_runs_only_the_missing_steps(recordings_path):
    conn = recordings_file.connect(recordings_path)
    try:
        assert recordings_file.migrate(conn, target=1) == [1]
        assert recordings_file.migrate(conn) == [2]
        assert recordings_file.migrate(conn) == []
    finally:
        conn.close()


def test_an_empty_file_is_used_as_a_fresh_one(recordings_path, make_recorder):
    open(recordings_path, "wb").close()
    recorder = assert_fresh_and_working(recordings_path, make_recorder)
    assert recorder.moved_aside is None and moved_files(recordings_path) == []


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"this is my shopping list\n" * 50, "not an SQLite database"),
        (b"SQLite format 3\x00" + b"\xff" * 200, "damaged"),
        (os.urandom(8192), "not an SQLite database"),
    ],
    ids=["text", "bad-header", "random"],
)
def test_garbage_is_moved_aside_and_a_fresh_file_started(
    recordings_path, make_recorder, caplog, content, reason
):
    with open(recordings_path, "wb") as handle:
        handle.write(content)
    with caplog.at_level(logging.ERROR, logger="supervisor.core.recordings_file"):
        recorder = assert_fresh_and_working(recordings_path, make_recorder)
    [moved] = moved_files(recordings_path)
    assert recorder.moved_aside == moved
    with open(moved, "rb") as handle:
        assert handle.read() == content
    [message] = [r.getMessage() for r in caplog.records]
    assert reason in message and moved in message and "started a fresh one" in message


def test_a_truncated_file_is_moved_aside(recordings_path, make_recorder, caplog):
    record_a_little(make_recorder, recordings_path)
    size = os.path.getsize(recordings_path)
    assert size > 8 * 4096
    with open(recordings_path, "r+b") as handle:
        handle.truncate(size // 2)
    with caplog.at_level(logging.ERROR, logger="supervisor.core.recordings_file"):
        assert_fresh_and_working(recordings_path, make_recorder)
    assert len(moved_files(recordings_path)) == 1
    assert "truncated" in caplog.text


def test_a_file_with_damaged_pages_is_moved_aside(recordings_path, make_recorder, caplog):
    record_a_little(make_recorder, recordings_path)
    with open(recordings_path, "r+b") as handle:
        handle.seek(2 * 4096)
        handle.write(b"\x55" * 6 * 4096)
    with caplog.at_level(logging.ERROR, logger="supervisor.core.recordings_file"):
        assert_fresh_and_working(recordings_path, make_recorder)
    assert len(moved_files(recordings_path)) == 1
    assert "damaged" in caplog.text


def test_an_sqlite_file_with_other_tables_is_moved_aside(recordings_path, make_recorder, caplog):
    conn = sqlite3.connect(recordings_path)
    conn.execute("CREATE TABLE grades (student TEXT, mark INTEGER)")
    conn.execute("INSERT INTO grades VALUES ('ada', 6)")
    conn.commit()
    conn.close()
    with caplog.at_level(logging.ERROR, logger="supervisor.core.recordings_file"):
        assert_fresh_and_working(recordings_path, make_recorder)
    [moved] = moved_files(recordings_path)
    assert "tables that are not forkwatch's (grades)" in caplog.text
    kept = sqlite3.connect(moved)
    assert kept.execute("SELECT student FROM grades").fetchall() == [("ada",)]
    kept.close()


def test_a_file_from_a_newer_forkwatch_is_moved_aside(recordings_path, make_recorder, caplog):
    conn = recordings_file.connect(recordings_path)
    recordings_file.migrate(conn)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with caplog.at_level(logging.ERROR, logger="supervisor.core.recordings_file"):
        assert_fresh_and_working(recordings_path, make_recorder)
    assert "newer forkwatch (schema version 99" in caplog.text


def test_moving_aside_takes_the_wal_along_and_never_overwrites_an_earlier_one(recordings_path):
    for round_ in range(2):
        for suffix in ("", "-wal"):
            with open(recordings_path + suffix, "wb") as handle:
                handle.write(f"garbage {round_}".encode())
        recordings_file.move_aside(recordings_path, "test")
    moved = moved_files(recordings_path)
    assert len([m for m in moved if not m.endswith("-wal")]) == 2
    assert len([m for m in moved if m.endswith("-wal")]) == 2
    assert not os.path.exists(recordings_path)


def test_a_folder_that_cannot_hold_the_file_turns_recording_off(tmp_path, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    with caplog.at_level(logging.ERROR, logger="supervisor.core.recorder"):
        recorder = Recorder(str(blocker / "recordings.sqlite3")).start()
    assert recorder.store is None and "cannot be opened" in recorder.unavailable
    recorder.append(*ev.server("clock", "STARTING"))  # a no-op, not an error
    assert recorder.flush() and recorder.close() and not recorder.running
    assert "recording is off" in caplog.text
