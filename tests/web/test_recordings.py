"""Recordings through the app, on real SQLite files: a real demo recorded and read back by
the API, the instructor's rename and delete, the exports, the list and replay pages,
bad input, recording turned off, and a broken file replaced by a fresh one."""

import html
import json
import os
import re
import socket
import time

import pytest

from supervisor.core.recorder import MB, Recorder
from supervisor.core.recordings_file import diagnose
from tests.helpers import BEARER, ask, browser_session, manager_of, wait_for, wait_state


def recordings_file(app):
    return os.path.join(app.config["FORKWATCH"]["state_dir"], "recordings.sqlite3")


def finished(client):
    """The newest recording, once it has ended (after "stop everything")."""

    def ended():
        found = client.get("/api/recordings", headers=BEARER).get_json()["recordings"]
        return found and not found[0]["recording"] and found[0]

    return wait_for(ended, 10.0, "the recording to end")


def fork_demo(app, client):
    """The forking clock with two clients: one answered and gone, one killed; then stop
    everything. Returns the recording's metadata and the PIDs (answered, killed)."""
    client.post(
        "/api/servers/forking_clock/start", json={"options": {"delay": 0, "reap": True}}, headers=BEARER
    )
    port = wait_state(manager_of(app), "forking_clock", "RUNNING")["port"]
    [recording] = wait_for(lambda: client.get("/api/recordings").get_json()["recordings"], what="a recording")
    wait_for(
        lambda: client.get(f"/api/recordings/{recording['id']}/state?t={time.time()}").get_json()["snapshot"],
        what="the recording's first snapshot",
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as answered:
        assert ask(answered).endswith(b"\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as held:
        held.sendall(b"What")  # a partial question: the child waits for the rest
        peer = f"127.0.0.1:{held.getsockname()[1]}"
        child = wait_for(
            lambda: next(
                (p for p in client.get("/api/servers/forking_clock").get_json()["tree"] if p["peer"] == peer),
                None,
            ),
            what="the held client's child",
        )
        kill = {"signal": "SIGKILL", "create_time": child["create_time"]}
        assert (
            client.post(f"/api/processes/{child['pid']}/signal", json=kill, headers=BEARER).status_code == 200
        )
        held.settimeout(10)
        try:
            assert held.recv(100) == b""  # the child is gone: EOF, or a reset for an unread question
        except ConnectionResetError:
            pass
    client.post("/api/stop-all", headers=BEARER)
    wait_state(manager_of(app), "forking_clock", "STOPPED")

    def forks_told():  # the timeline tells a fork a moment after it (its story is held 0.2 s)
        events = client.get("/api/events?after=0").get_json()["events"]
        return [
            int(re.search(r"forked child (\d+)", e["text"]).group(1)) for e in events if e["kind"] == "fork"
        ]

    forked = wait_for(lambda: len(forks_told()) == 2 and forks_told(), what="both forks told")
    return finished(client), forked, child["pid"]


def test_a_demo_is_recorded_and_read_back(app, client):
    meta, forked, killed = fork_demo(app, client)
    assert meta["servers"] == ["forking_clock"]
    assert (meta["forks"], meta["kills"]) == (2, 1) and len(forked) == 2
    assert client.get(f"/api/recordings/{meta['id']}").get_json() == meta

    events = client.get(f"/api/recordings/{meta['id']}/events?limit=20000").get_json()
    assert events["more"] is False and events["last"] == events["events"][-1]["id"]
    kinds = [(e["kind"], e["payload"].get("state") or e["payload"].get("kind")) for e in events["events"]]
    assert kinds[0] == ("server", "STARTING") and kinds[-1] == ("server", "STOPPED")
    forks = [
        e["payload"]["pid"]
        for e in events["events"]
        if e["kind"] == "proc" and e["payload"]["kind"] == "fork"
    ]
    assert forks == forked
    lines = [line for e in events["events"] if e["kind"] == "output" for line in e["payload"]["lines"]]
    assert client.get("/api/servers/forking_clock/output?tail=200").get_json()["lines"] == lines
    seqs = [e["payload"]["seq"] for e in events["events"] if e["kind"] == "output"]
    assert seqs == sorted(seqs) and seqs[0] == 0  # each console line is numbered once

    # Paging by id is exact; by time and by kind too.
    first = client.get(f"/api/recordings/{meta['id']}/events?limit=3").get_json()
    assert first["more"] is True and [e["id"] for e in first["events"]] == [
        e["id"] for e in events["events"][:3]
    ]
    rest = client.get(f"/api/recordings/{meta['id']}/events?after={first['last']}&limit=20000").get_json()
    assert first["events"] + rest["events"] == events["events"]
    middle = events["events"][5]
    upto = client.get(f"/api/recordings/{meta['id']}/events?by=t&until={middle['t']}&limit=20000").get_json()
    assert upto["events"][-1]["t"] == middle["t"] and all(e["t"] <= middle["t"] for e in upto["events"])
    timeline = client.get(f"/api/recordings/{meta['id']}/events?kind=event&limit=20000").get_json()
    assert {e["kind"] for e in timeline["events"]} == {"event"}
    kill = next(e for e in timeline["events"] if e["payload"]["kind"] == "kill")
    assert kill["payload"]["text"] == f"SIGKILL sent to PID {killed} of forking_clock"

    # The state at the kill: the killed child is still there (its exit comes after).
    state = client.get(f"/api/recordings/{meta['id']}/state?t={kill['t']}").get_json()
    assert state["snapshot"] is not None and state["snapshot"]["t"] <= kill["t"]
    assert all(state["snapshot"]["event_id"] < e["id"] and e["t"] <= kill["t"] for e in state["events"])
    recorded_server = next(s for s in state["snapshot"]["state"]["servers"] if s["name"] == "forking_clock")
    assert "output" in recorded_server and recorded_server["output_seq"] >= len(recorded_server["output"])


def test_the_instructor_renames_and_deletes_viewers_only_watch(app, client):
    meta, _, _ = fork_demo(app, client)
    url = f"/api/recordings/{meta['id']}"
    viewer, viewer_headers = browser_session(app)
    assert viewer.get(url).status_code == 200
    assert viewer.patch(url, json={"title": "mine"}, headers=viewer_headers).status_code == 401
    assert viewer.delete(url, headers=viewer_headers).status_code == 401
    teacher, headers = browser_session(app, instructor=True)
    assert teacher.patch(url, json={"title": "no csrf"}).status_code == 403
    renamed = teacher.patch(url, json={"title": "  Forks   and a kill "}, headers=headers).get_json()
    assert renamed["title"] == "Forks and a kill"
    assert client.get(url).get_json()["title"] == "Forks and a kill"
    for body, words in (
        ({}, "title must be text"),
        ({"title": ""}, "title must be 1 to 120 characters"),
        ({"title": "x" * 121}, "title must be 1 to 120 characters"),
        ({"title": "a\u202eb"}, "control characters"),
        ({"title": 5}, "title must be text"),
    ):
        response = client.patch(url, json=body, headers=BEARER)
        assert response.status_code == 400 and words in response.get_json()["error"], body
    staged = client.post("/api/stage", json={"kind": "recording", "name": str(meta["id"])}, headers=BEARER)
    assert staged.status_code == 200
    assert teacher.delete(url, headers=headers).get_json() == {"deleted": meta["id"]}
    assert client.get("/api/stage").get_json()["kind"] is None  # what is gone leaves the stage
    assert client.get(url).status_code == 404
    page = client.get(f"/recordings/{meta['id']}?on_stage=1")  # a frame still open shows why
    assert page.status_code == 404 and page.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert client.get("/api/recordings").get_json()["recordings"] == []
    assert client.delete(url, headers=BEARER).status_code == 404


def test_a_recording_under_way_cannot_be_deleted(app, client):
    client.post("/api/servers/clock/start", headers=BEARER)
    wait_state(manager_of(app), "clock", "RUNNING")
    [meta] = wait_for(lambda: client.get("/api/recordings").get_json()["recordings"], what="a recording")
    assert meta["recording"] is True
    response = client.delete(f"/api/recordings/{meta['id']}", headers=BEARER)
    assert response.status_code == 409 and "still being recorded" in response.get_json()["error"]


@pytest.mark.parametrize(
    "path, status, words",
    [
        ("/api/recordings/abc", 404, "there is no recording 'abc'"),
        ("/api/recordings/\u00b2", 404, "there is no recording '\u00b2'"),  # isdigit(), not a number
        ("/api/recordings/\u0661", 404, "there is no recording"),  # an Arabic-Indic one, not recording 1
        ("/recordings/\u00b2", 404, None),
        ("/api/recordings/1/events?after=\u00b2", 400, "after must be a whole number"),
        ("/api/recordings/99999999999999999999999", 404, "there is no recording"),
        ("/api/recordings/77", 404, "there is no recording 77"),
        ("/api/recordings/1/events?after=-1", 400, "after must be a whole number"),
        ("/api/recordings/1/events?until=x", 400, "until must be a whole number"),
        ("/api/recordings/1/events?limit=0", 400, "limit must be 1 or more"),
        ("/api/recordings/1/events?by=size", 400, "by must be 'id' or 't'"),
        ("/api/recordings/1/events?by=t&after=nan", 400, "after must be a time in seconds"),
        ("/api/recordings/1/events?kind=a%20b", 400, "kind must be the name of an event kind"),
        ("/api/recordings/1/state", 400, "t (a time in seconds since the epoch) is required"),
        ("/api/recordings/1/state?t=inf", 400, "t must be a time in seconds"),
        ("/api/recordings/1/state?t=%FF", 400, "t must be a time in seconds"),
        ("/api/recordings/1/export?format=pdf", 400, "format must be 'html' or 'json'"),
    ],
)
def test_bad_requests_get_a_sentence(client, path, status, words):
    response = client.get(path)
    assert response.status_code == status, response.get_data()[:200]
    if words is None:  # a page: its sentence in the page
        assert "there is no recording" in response.get_data(as_text=True)
        return
    assert list(response.get_json()) == ["error"] and words in response.get_json()["error"]


def test_exports_json_and_a_page_that_needs_no_network(app, client):
    meta, forked, _ = fork_demo(app, client)
    response = client.get(f"/api/recordings/{meta['id']}/export?format=json")
    assert (
        response.headers["Content-Disposition"]
        == f'attachment; filename="forkwatch-recording-{meta["id"]}.json"'
    )
    document = response.get_json()
    assert (document["format"], document["version"], document["recording"]) == (
        "forkwatch-recording",
        1,
        meta,
    )
    assert document["snapshots"] and document["events"][0]["payload"]["state"] == "STARTING"

    response = client.get(f"/api/recordings/{meta['id']}/export?format=html")
    assert response.mimetype == "text/html"
    assert response.headers["Content-Disposition"].endswith(f'forkwatch-recording-{meta["id"]}.html"')
    page = response.get_data(as_text=True)
    policy = html.unescape(
        re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page).group(1)
    )
    assert "default-src 'none'" in policy and "'unsafe-inline'" not in policy
    assert not re.search(r'(src|href)="(?!data:)[^"#]', page), "the saved page must load nothing"
    inlined = re.search(r'<script id="recording-export" type="application/json">(.*?)</script>', page, re.S)
    assert json.loads(inlined.group(1)) == document
    modules = json.loads(re.search(r'<script id="modules"[^>]*>(.*?)</script>', page, re.S).group(1))
    assert {"replay.js", "player.js", "store.js", "render.js", "tree_svg.js"} <= set(modules)
    assert "app.js" not in modules  # the live page's socket code stays out


def test_the_pages_list_and_replay_for_everyone(app, client):
    meta, _, _ = fork_demo(app, client)
    listing = client.get("/recordings").get_data(as_text=True)
    assert f'href="/recordings/{meta["id"]}"' in listing and "forking_clock" in listing
    assert "data-delete" not in listing  # a viewer sees no controls
    teacher, _ = browser_session(app, instructor=True)
    assert "data-delete" in teacher.get("/recordings").get_data(as_text=True)
    page = client.get(f"/recordings/{meta['id']}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'id="card-forking_clock"' in text and 'id="card-clock"' not in text  # only its servers
    assert 'data-command="start"' not in teacher.get(f"/recordings/{meta['id']}").get_data(as_text=True)
    missing = client.get("/recordings/404")
    assert missing.status_code == 404 and "there is no recording 404" in missing.get_data(as_text=True)


def test_a_secret_is_recorded_hidden_until_the_instructor_reveals_it(app, client):
    manager = manager_of(app)
    client.post("/api/servers/secret_number/start", headers=BEARER)
    wait_state(manager, "secret_number", "RUNNING")
    secret = manager.servers["secret_number"].secret
    player, headers = browser_session(app)
    assert player.post("/api/play/secret_number", json={"guess": secret}, headers=headers).status_code == 200
    client.post("/api/servers/secret_number/secret", headers=BEARER)
    assert player.post("/api/play/secret_number", json={"guess": secret}, headers=headers).status_code == 200
    client.post("/api/stop-all", headers=BEARER)
    meta = finished(client)
    events = client.get(f"/api/recordings/{meta['id']}/events?limit=20000").get_json()["events"]
    plays = [e["payload"]["summary"] for e in events if e["kind"] == "play"]
    assert plays == ["guessed [secret]: right", f"guessed {secret}: secret found"]
    reveal = next(index for index, e in enumerate(events) if e["kind"] == "secret")
    assert f"guessed {secret}" not in json.dumps(events[:reveal])
    assert f"guessed {secret}" in json.dumps(events[reveal:])


def test_recording_off_is_said_by_every_route(app_factory):
    app = app_factory(recording=False)
    client = app.test_client()
    for path in ("/api/recordings", "/api/recordings/1", "/api/recordings/1/export?format=html"):
        response = client.get(path)
        assert response.status_code == 409
        assert response.get_json() == {
            "error": "recording is off: it is turned off in the settings (recording = false)"
        }
    assert "Recording is off: it is turned off" in client.get("/recordings").get_data(as_text=True)
    assert not os.path.exists(recordings_file(app))


def test_a_file_that_cannot_be_opened_turns_recording_off_and_says_why(tmp_path, app_factory):
    (tmp_path / "state" / "recordings.sqlite3").mkdir(parents=True)  # a folder where the file goes
    client = app_factory().test_client()
    response = client.get("/api/recordings")
    assert response.status_code == 409
    assert response.get_json()["error"].startswith("recording is off: the recordings file cannot be opened (")
    assert "Recording is off: the recordings file cannot be opened" in client.get("/recordings").get_data(
        as_text=True
    )


def test_the_size_cap_comes_from_the_settings(app_factory):
    assert app_factory(max_recordings_mb=0.5).extensions["forkwatch_recording"].recorder.max_bytes == MB // 2


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_broken_file_is_moved_aside_and_a_fresh_one_started(tmp_path, app_factory, damage):
    folder = tmp_path / "state"
    folder.mkdir()
    path = folder / "recordings.sqlite3"
    if damage == "garbage":
        path.write_bytes(b"\x00not a database\xff" * 500)
        why = "it is not an SQLite database"
    else:
        recorder = Recorder(str(path)).start()
        recorder.begin("a demo")
        for number in range(3000):
            recorder.append(
                "output", {"server": "clock", "stream": "stdout", "lines": [f"line {number}" * 5]}
            )
        assert recorder.close()
        size = path.stat().st_size
        with open(path, "r+b") as handle:
            handle.truncate(size // 2)
        why = "it is truncated"
    broken = path.read_bytes()
    app = app_factory()
    notice = app.test_client().get("/api/recordings").get_json()["notice"]
    assert notice.startswith(f"the recordings file could not be used ({why}")
    moved = re.search(r"moved aside to (\S+) and a fresh one started", notice).group(1)
    with open(moved, "rb") as handle:
        assert handle.read() == broken
    assert diagnose(str(path)) is None
    assert app.test_client().get("/api/recordings").get_json()["recordings"] == []
    assert "moved aside" in app.test_client().get("/recordings").get_data(as_text=True)
