"""The recorder on real SQLite files: what a demo leaves in the file, the queue that never
blocks its caller, snapshots and seeking, secrets, rename, delete, the size cap, export."""

import json
import logging
import sqlite3
import threading
import zlib

import pytest

from supervisor.core.process import CommandError
from tests.core import published as ev
from tests.helpers import wait_for


def publish(recorder, *events):
    for kind, payload in events:
        recorder.append(kind, payload)


def only(recorder):
    [meta] = recorder.store.list()
    return meta


def kinds(recorder, recording_id):
    return [
        (e["kind"], e["payload"].get("kind") or e["payload"].get("state"))
        for e in recorder.store.events(recording_id)
    ]


def test_a_demo_is_recorded_from_the_first_start_to_stop_everything(make_recorder):
    recorder = make_recorder()
    publish(
        recorder,
        ev.timeline(None, "info", "the previous run did not stop cleanly"),  # before: not recorded
        ev.server("forking_clock", "STARTING"),
        ev.server("forking_clock", "RUNNING"),
        ev.stats("forking_clock"),
        ev.proc("forking_clock", "fork", pid=40100),
        ev.output("forking_clock", "connection from ('127.0.0.1', 51000)"),
        ev.timeline("forking_clock", "kill", "SIGKILL sent to PID 40100 of forking_clock"),
        ev.proc("forking_clock", "exit", pid=40100),
        ev.server("forking_clock", "STOPPING"),
        ev.stop_everything("forking_clock"),
        ev.server("forking_clock", "STOPPED"),
        ev.output("forking_clock", "after the end"),  # after: not recorded
    )
    assert recorder.flush()
    meta = only(recorder)
    assert kinds(recorder, meta["id"]) == [
        ("server", "STARTING"),
        ("server", "RUNNING"),
        ("proc", "fork"),
        ("output", None),
        ("event", "kill"),
        ("proc", "exit"),
        ("server", "STOPPING"),
        ("event", "stop"),
        ("server", "STOPPED"),
    ]
    events = recorder.store.events(meta["id"])
    assert meta["started"] == events[0]["t"] and meta["ended"] == events[-1]["t"]
    assert meta["duration"] == round(meta["ended"] - meta["started"], 3)
    assert (meta["servers"], meta["forks"], meta["kills"], meta["recording"]) == (
        ["forking_clock"],
        1,
        1,
        False,
    )
    assert meta["title"].endswith(" forking_clock")
    assert events[3]["payload"]["lines"] == ["connection from ('127.0.0.1', 51000)"]


def test_a_restart_stays_in_one_recording_which_ends_after_end_after(make_recorder):
    recorder = make_recorder(end_after=0.3)
    publish(
        recorder,
        ev.server("clock", "STARTING"),
        ev.server("clock", "RUNNING"),
        ev.server("clock", "STOPPING"),
        ev.server("clock", "STOPPED"),
        ev.server("clock", "STARTING"),  # restart: no new recording
        ev.server("clock", "RUNNING"),
    )
    assert recorder.flush()
    assert only(recorder)["recording"]
    publish(recorder, ev.server("clock", "STOPPING"), ev.server("clock", "STOPPED"))
    wait_for(lambda: not only(recorder)["recording"], 5.0, "the recording to end once clock stayed stopped")
    assert len(kinds(recorder, only(recorder)["id"])) == 8
    publish(recorder, ev.server("web", "STARTING"))
    assert recorder.flush()
    assert [m["servers"] for m in recorder.store.list()] == [["web"], ["clock"]]


def test_begin_and_end_by_hand(make_recorder):
    recorder = make_recorder()
    recorder.begin("Forks, zombies and the reaper")
    publish(recorder, ev.output("clock", "hello"))
    recorder.end()
    publish(recorder, ev.output("clock", "not recorded"))
    assert recorder.flush()
    meta = only(recorder)
    assert meta["title"] == "Forks, zombies and the reaper" and not meta["recording"]
    assert [e["payload"]["lines"] for e in recorder.store.events(meta["id"])] == [["hello"]]
    with pytest.raises(CommandError):
        recorder.begin("\x1b[2J")


def test_a_full_queue_drops_and_counts_and_never_blocks_the_caller(make_recorder, recordings_path):
    recorder = make_recorder(queue_limit=100)
    publish(recorder, ev.server("forking_clock", "STARTING"))
    assert recorder.flush()
    blocker = sqlite3.connect(recordings_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the writer now waits for the file
    try:
        # If append() waited for the writer, this thread (which holds the file) would hang here.
        for i in range(1000):
            recorder.append(*ev.output("forking_clock", f"line {i}"))
        assert recorder.dropped >= 1000 - 2 * 100
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert recorder.flush()
    stored = recorder.store.events(only(recorder)["id"], limit=5000)
    assert len(stored) - 1 + recorder.dropped == 1000
    assert recorder.lost == 0
    numbers = [int(e["payload"]["lines"][0].split()[1]) for e in stored[1:]]
    assert numbers == sorted(numbers)


def test_server_events_are_queued_even_when_the_queue_is_full(make_recorder, recordings_path):
    recorder = make_recorder(queue_limit=10)
    blocker = sqlite3.connect(recordings_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        publish(recorder, *[ev.output("clock", "flood") for _ in range(50)], ev.server("clock", "STARTING"))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert recorder.flush()
    assert only(recorder)["servers"] == ["clock"]


def test_stats_are_not_stored(make_recorder):
    recorder = make_recorder()
    publish(recorder, ev.server("clock", "STARTING"), *[ev.stats("clock") for _ in range(10)])
    assert recorder.flush()
    assert kinds(recorder, only(recorder)["id"]) == [("server", "STARTING")]


class Counter:
    """A snapshot source that says how many events had been published when it was called."""

    def __init__(self):
        self.published = 0
        self.lock = threading.Lock()

    def publish(self, recorder, kind, payload):
        with self.lock:
            payload["seq"] = self.published
            recorder.append(kind, payload)
            self.published += 1

    def __call__(self):
        with self.lock:
            return {"published": self.published}


def test_snapshots_let_a_replay_seek_to_any_time(make_recorder):
    counter = Counter()
    recorder = make_recorder(snapshot=counter, snapshot_interval=0.05)
    counter.publish(recorder, *ev.server("forking_clock", "STARTING"))
    assert recorder.flush()

    def snapshots_taken():
        counter.publish(recorder, *ev.proc("forking_clock", "fork"))
        return len(recorder.store.export(only(recorder)["id"])["snapshots"]) >= 4

    wait_for(snapshots_taken, 10.0, "four snapshots")
    assert recorder.flush()
    document = recorder.store.export(only(recorder)["id"])
    everything = document["events"]
    for snapshot in document["snapshots"][1:]:
        for when in (snapshot["t"], snapshot["t"] + 0.01):
            state = recorder.store.state_at(only(recorder)["id"], when)
            assert state["snapshot"]["t"] == max(s["t"] for s in document["snapshots"] if s["t"] <= when)
            seen = state["snapshot"]["state"]["published"]
            returned = {e["id"] for e in state["events"]}
            assert all(e["t"] <= when for e in state["events"])
            # every event up to `when` is either in the snapshot or among the events returned
            for event in everything:
                if event["t"] <= when:
                    assert event["payload"]["seq"] < seen or event["id"] in returned
            # and the snapshot includes every event up to its event_id
            assert all(
                e["payload"]["seq"] < seen for e in everything if e["id"] <= state["snapshot"]["event_id"]
            )


def test_before_the_first_snapshot_the_state_is_the_events_from_the_start(make_recorder):
    recorder = make_recorder(snapshot=lambda: {"servers": []}, snapshot_interval=3600)
    publish(recorder, ev.server("clock", "STARTING"), ev.output("clock", "one"))
    assert recorder.flush()
    rid = only(recorder)["id"]
    [first] = wait_for(
        lambda: recorder.store.export(rid)["snapshots"], 5.0, "the snapshot taken at the start"
    )
    events = recorder.store.events(rid)
    before = first["t"] - 1e-6
    early = recorder.store.state_at(rid, before)
    assert early["snapshot"] is None
    assert early["events"] == [e for e in events if e["t"] <= before] != []
    assert recorder.store.state_at(rid, events[0]["t"] - 1) == {
        "t": events[0]["t"] - 1,
        "snapshot": None,
        "events": [],
    }
    assert recorder.store.state_at(rid, first["t"])["snapshot"]["state"] == {"servers": []}


def test_events_in_a_range_by_id_and_by_time_with_a_limit(make_recorder):
    recorder = make_recorder()
    publish(recorder, ev.server("clock", "STARTING"), *[ev.output("clock", f"n{i}") for i in range(20)])
    assert recorder.flush()
    rid = only(recorder)["id"]
    every = recorder.store.events(rid)
    assert len(every) == 21
    ids = [e["id"] for e in every]
    assert [e["id"] for e in recorder.store.events(rid, after=ids[4], until=ids[9])] == ids[5:10]
    assert [e["id"] for e in recorder.store.events(rid, after=ids[4], limit=3)] == ids[5:8]
    times = [e["t"] for e in every]
    by_time = recorder.store.events(rid, after=times[4], until=times[9], by="t")
    assert all(times[4] < e["t"] <= times[9] for e in by_time) and ids[9] in {e["id"] for e in by_time}
    for bad in ({"after": -1}, {"limit": "ten"}, {"by": "size"}, {"after": "x", "by": "t"}):
        with pytest.raises(CommandError) as refused:
            recorder.store.events(rid, **bad)
        assert refused.value.status == 400
    with pytest.raises(CommandError) as missing:
        recorder.store.events(rid + 1)
    assert missing.value.status == 404


def file_bytes(path):
    """The file and its WAL as bytes, with every snapshot's compressed state inflated."""
    data = b""
    for suffix in ("", "-wal"):
        try:
            with open(path + suffix, "rb") as handle:
                data += handle.read()
        except FileNotFoundError:
            pass
    conn = sqlite3.connect(path)
    for (blob,) in conn.execute("SELECT state FROM snapshots"):
        data += zlib.decompress(blob)
    conn.close()
    return data


GUESSES = (
    b'guessed "073"',
    b"guessed 73:",
    b"guessed 7_3",
    b"GET /zombie ",
    b"GET /ZOMBIE",
    b"GET /%7Aombie",
)


def test_a_secret_never_reaches_the_file_until_it_is_revealed(make_recorder, recordings_path):
    def game_state():
        return {
            "servers": [
                {"name": "secret_number", "output": ['guessed "073": right']},
                {"name": "guess_word", "output": ['"GET /zombie HTTP/1.0" 200 -']},
            ]
        }

    recorder = make_recorder(snapshot=game_state, snapshot_interval=0.01)
    recorder.hide("secret_number", "number", "73")
    recorder.hide("guess_word", "word", "zombie")
    publish(
        recorder,
        ev.server("secret_number", "STARTING"),
        ev.output("secret_number", "('127.0.0.1', 51234) guessed \"073\": right"),
        ev.play("secret_number", "ada", "guessed 73: right"),
        ev.play("secret_number", "bob", "guessed 7_3: secret found"),
        ev.output(
            "guess_word", '127.0.0.1 - - [29/Nov/2026 10:00:00] "GET /zombie HTTP/1.0" 200 -', stream="stderr"
        ),
        ev.output(
            "guess_word", '127.0.0.1 - - [29/Nov/2026 10:00:01] "GET /ZOMBIE HTTP/1.0" 200 -', stream="stderr"
        ),
        ev.output(
            "guess_word",
            '127.0.0.1 - - [29/Nov/2026 10:00:02] "GET /%7Aombie HTTP/1.0" 200 -',
            stream="stderr",
        ),
        ev.proc("forking_clock", "status", status="zombie"),
    )
    recorder.reveal("secret_number")  # only what is published from now on may show it
    assert recorder.flush()
    wait_for(lambda: recorder.store.export(only(recorder)["id"])["snapshots"], 5.0, "a snapshot")
    stored = file_bytes(recordings_path)
    for guess in GUESSES:
        assert guess not in stored, guess
    assert b"[secret]" in stored
    assert b'"status":"zombie"' in stored  # another server's vocabulary is left alone

    publish(recorder, ev.play("secret_number", "cy", "guessed 73: secret found"))
    assert recorder.close()
    stored = file_bytes(recordings_path)
    assert b"guessed 73: secret found" in stored  # after the reveal it is kept
    assert b"GET /zombie " not in stored


def test_rename_and_delete(make_recorder, recordings_path):
    recorder = make_recorder()
    publish(recorder, ev.server("clock", "STARTING"), *[ev.output("clock", "x" * 100) for _ in range(3000)])
    publish(recorder, ev.server("clock", "STOPPED"), ev.stop_everything("clock"))
    publish(recorder, ev.server("web", "STARTING"))
    assert recorder.flush()
    finished, active = sorted(m["id"] for m in recorder.store.list())
    renamed = recorder.store.rename(finished, "  Monday's   demo  ")
    assert renamed["title"] == "Monday's demo" == recorder.store.get(finished)["title"]
    for bad in ("", "x" * 121, 7, "a\x00b"):
        with pytest.raises(CommandError) as refused:
            recorder.store.rename(finished, bad)
        assert refused.value.status == 400
    with pytest.raises(CommandError) as refused:
        recorder.store.delete(active)
    assert refused.value.status == 409
    assert recorder.store.delete(finished) == {"deleted": finished}
    assert [m["id"] for m in recorder.store.list()] == [active]
    with pytest.raises(CommandError) as gone:
        recorder.store.get(finished)
    assert gone.value.status == 404

    def purged():
        conn = sqlite3.connect(recordings_path)
        try:
            return (
                conn.execute("SELECT COUNT(*) FROM events WHERE recording = ?", (finished,)).fetchone()[0]
                == 0
            )
        finally:
            conn.close()

    wait_for(purged, 10.0, "the deleted recording's events to be purged")


def test_the_size_cap_drops_the_oldest_whole_recordings_never_the_one_under_way(
    make_recorder, recordings_path, caplog
):
    caplog.set_level(logging.INFO, logger="supervisor.core.recorder")
    recorder = make_recorder(max_bytes=400_000)
    line = "y" * 200
    for number in range(4):
        publish(
            recorder,
            ev.server(f"s{number}", "STARTING"),
            *[ev.output(f"s{number}", line) for _ in range(400)],
        )
        publish(recorder, ev.server(f"s{number}", "STOPPED"), ev.stop_everything(f"s{number}"))
        assert recorder.flush()
    publish(recorder, ev.server("live", "STARTING"), *[ev.output("live", line) for _ in range(2500)])
    assert recorder.flush()

    def trimmed():
        return [m["servers"][0] for m in recorder.store.list()] == ["live"]

    wait_for(trimmed, 10.0, "the finished recordings to be dropped")
    kept = "the recording under way alone is over the 0.4 MB cap; it is kept"
    wait_for(lambda: kept in caplog.text, 10.0, "the cap to reach the recording under way")
    assert freelist(recordings_path) == 0  # the purge gave the freed pages back first
    assert len(recorder.store.events(only(recorder)["id"], limit=5000)) == 2501
    assert "recording 1 removed: the recordings file is over its 0.4 MB cap" in caplog.text


def freelist(path):
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA freelist_count").fetchone()[0]
    finally:
        conn.close()


def test_the_export_is_one_json_document_with_metadata_events_and_snapshots(make_recorder):
    recorder = make_recorder(snapshot=lambda: {"servers": [{"name": "clock", "output": ["hi"]}]})
    publish(recorder, ev.server("clock", "STARTING"), ev.output("clock", "hi"))
    assert recorder.flush()
    rid = only(recorder)["id"]
    wait_for(lambda: recorder.store.export(rid)["snapshots"], 5.0, "the first snapshot")
    document = json.loads(json.dumps(recorder.store.export(rid)))
    assert document["format"] == "forkwatch-recording" and document["version"] == 1
    assert document["recording"]["id"] == rid
    assert [e["kind"] for e in document["events"]] == ["server", "output"]
    assert document["snapshots"][0]["state"] == {"servers": [{"name": "clock", "output": ["hi"]}]}


def test_bad_payloads_and_a_failing_snapshot_source_are_logged_not_fatal(make_recorder, caplog):
    def broken():
        raise RuntimeError("no snapshot today")

    loop = {"server": "clock", "kind": "info"}
    loop["self"] = loop
    recorder = make_recorder(snapshot=broken, snapshot_interval=0.01)
    with caplog.at_level(logging.ERROR, logger="supervisor.core.recorder"):
        publish(recorder, ev.server("clock", "STARTING"), ("event", loop), ("event", "not a dict"))
        publish(recorder, ev.output("clock", "still recording"))
        assert recorder.flush()
        wait_for(
            lambda: "the snapshot source failed" in caplog.text, 5.0, "the snapshot failure to be logged"
        )
    assert kinds(recorder, only(recorder)["id"]) == [("server", "STARTING"), ("output", None)]
    assert recorder.lost == 1
    assert "could not encode an event of kind 'event'" in caplog.text
    assert "no snapshot today" in caplog.text
    assert recorder.running


def test_close_ends_the_recording_and_stops_the_writer(make_recorder):
    recorder = make_recorder()
    publish(recorder, ev.server("clock", "STARTING"))
    assert recorder.close() and not recorder.running
    assert not only(recorder)["recording"]
    recorder.append(*ev.output("clock", "after close"))  # ignored, not an error
    assert recorder.close()
