"""Socket.IO /live through Flask-SocketIO's test client: the snapshot, live events, roles on control events."""

import socket

import pytest

from tests.helpers import (
    BEARER,
    TOKEN,
    browser_session,
    live_client,
    manager_of,
    received,
    wait_for,
    wait_state,
)


@pytest.mark.reliability("intruders", "every Socket.IO control event as a viewer")
def test_socket_viewer_gets_a_snapshot_and_cannot_control(app, client, report):
    sio = live_client(app, client)
    snapshots = received(sio, "snapshot")
    assert len(snapshots) == 1 and snapshots[0]["role"] == "viewer"
    assert {s["name"] for s in snapshots[0]["servers"]} >= {"clock", "forking_clock"}
    events = [
        ("start", {"name": "clock"}),
        ("stop", {"name": "clock"}),
        ("restart", {"name": "clock"}),
        ("interrupt", {"name": "clock"}),
        ("kill", {"pid": 1, "create_time": 0}),
        ("kill_children", {"name": "clock"}),
        ("stdin", {"name": "fork_demo", "line": "q"}),
        ("stop_all", {}),
        ("focus", {"pid": 1}),
        ("check", {"name": "clock"}),
    ]
    report["cases"] = len(events)
    for event, data in events:
        ack = sio.emit(event, data, namespace="/live", callback=True)
        assert ack == {"ok": False, "error": "this needs the instructor's token", "result": None}, event
    assert manager_of(app).servers["clock"].state.name == "STOPPED"
    sio.disconnect(namespace="/live")


def test_socket_instructor_by_token_and_by_cookie(app):
    sio = live_client(app, auth={"token": TOKEN})
    assert received(sio, "snapshot")[0]["role"] == "instructor"
    ack = sio.emit("start", {"name": "clock"}, namespace="/live", callback=True)
    assert ack["ok"] is True and ack["result"]["state"] in (
        "STARTING",
        "RUNNING",
    )  # a fast start may be ready
    wait_state(manager_of(app), "clock", "RUNNING")
    ack = sio.emit("start", {"name": "clock", "options": {"once": "yes"}}, namespace="/live", callback=True)
    assert ack["ok"] is False and "already" in ack["error"]
    ack = sio.emit("kill", {"pid": "x"}, namespace="/live", callback=True)
    assert ack["ok"] is False
    ack = sio.emit("stop_all", namespace="/live", callback=True)
    assert ack["ok"] is True and ack["result"]["stopping"] == ["clock"]
    wait_state(manager_of(app), "clock", "STOPPED")
    sio.disconnect(namespace="/live")
    client, _ = browser_session(app, instructor=True)
    by_cookie = live_client(app, client)
    assert received(by_cookie, "snapshot")[0]["role"] == "instructor"
    by_cookie.disconnect(namespace="/live")


def test_socket_wrong_token_is_refused(app):
    sio = live_client(app, auth={"token": "wrong"})
    assert not sio.is_connected(namespace="/live")


def test_socket_receives_live_events(app, client):
    sio = live_client(app, client)
    sio.get_received("/live")
    client.post("/api/servers/forking_clock/start", json={"options": {"delay": 0}}, headers=BEARER)
    wait_state(manager_of(app), "forking_clock", "RUNNING")
    with socket.create_connection(("127.0.0.1", manager_of(app).servers["forking_clock"].port)) as sock:
        sock.sendall(b"x" * 25)
        sock.recv(25)
    seen = []
    wait_for(
        lambda: (
            seen.extend(sio.get_received("/live"))
            or {"server", "proc", "event", "output"} <= {m["name"] for m in seen}
        ),
        what="live events",
    )
    kinds = [m["args"][0]["kind"] for m in seen if m["name"] == "proc"]
    assert "fork" in kinds
    sio.disconnect(namespace="/live")


def test_socket_payloads_are_checked_by_type_before_any_handler_runs(app):
    sio = live_client(app, auth={"token": TOKEN})
    cases = [
        ("start", [1], "the event's data must be an object"),
        ("start", "clock", "the event's data must be an object"),
        ("start", {"name": 5}, "name must be text"),
        ("start", {"name": "clock", "options": [1]}, "options must be an object"),
        ("stop", {}, "name must be text"),
        ("kill", {"pid": "12", "create_time": 1.0}, "pid must be a whole number"),
        ("kill", {"pid": True, "create_time": 1.0}, "pid must be a whole number"),
        ("kill", {"pid": 12, "create_time": "now"}, "create_time must be a number"),
        ("kill_children", {"name": "clock", "signal": 9}, "signal must be text"),
        ("stdin", {"name": "fork_demo", "line": ["q"]}, "line must be text"),
    ]
    for event, data, error in cases:
        ack = sio.emit(event, data, namespace="/live", callback=True)
        assert ack == {"ok": False, "error": error, "result": None}, (event, data, ack)
    assert all(s.state.name == "STOPPED" for s in manager_of(app).servers.values())
    sio.disconnect(namespace="/live")


def test_a_handler_bug_is_reported_as_one_and_logged_not_called_bad_data(app, monkeypatch, caplog):
    def broken(name):
        raise KeyError("a bug in the handler")

    monkeypatch.setattr(manager_of(app), "stop", broken)
    sio = live_client(app, auth={"token": TOKEN})
    ack = sio.emit("stop", {"name": "clock"}, namespace="/live", callback=True)
    assert ack["ok"] is False and "malformed" not in ack["error"]
    assert ack["error"] == "the dashboard failed to do that; its log says why"
    assert any(r.exc_info and "a bug in the handler" in str(r.exc_info[1]) for r in caplog.records)
    assert sio.is_connected(namespace="/live")


def test_socket_interrupt_is_ctrl_c_and_answers_through_the_ack(app):
    sio = live_client(app, auth={"token": TOKEN})
    ack = sio.emit("interrupt", {"name": "clock"}, namespace="/live", callback=True)
    assert ack == {"ok": False, "error": "clock is not running (stopped)", "result": None}
    sio.emit("start", {"name": "clock"}, namespace="/live", callback=True)
    wait_state(manager_of(app), "clock", "RUNNING")
    sio.get_received("/live")
    ack = sio.emit("interrupt", {"name": "clock"}, namespace="/live", callback=True)
    assert ack["ok"] is True and ack["result"]["name"] == "clock"
    info = wait_state(manager_of(app), "clock", "EXITED")
    assert (info["exit_code"], info["exit_class"]) == (0, "finished")
    seen = []
    wait_for(
        lambda: seen.extend(received(sio, "event")) or any(e["kind"] == "finished" for e in seen),
        what="the finished event",
    )
    assert [e["kind"] for e in seen if e["server"] == "clock"][-2:] == ["interrupt", "finished"]
    sio.disconnect(namespace="/live")


def test_the_snapshot_carries_the_console_so_a_late_page_sees_it(app):
    manager = manager_of(app)
    manager.start("fork_demo")
    server = manager.servers["fork_demo"]
    wait_for(
        lambda: any(line.startswith("hello from child") for line in server.output.tail()), what="the hello"
    )
    sio = live_client(app)
    snapshot = received(sio, "snapshot")[0]
    demo = next(s for s in snapshot["servers"] if s["name"] == "fork_demo")
    assert demo["output"] == server.output.tail(200)
    assert any(line.startswith("hello from child") for line in demo["output"])
    assert demo["output_seq"] == len(server.output.tail())  # the number of the line after them
    assert {story["pid"] for story in demo["stories"]} <= {p["pid"] for p in demo["tree"]}
    assert snapshot["client_lines"] == {}
    sio.disconnect(namespace="/live")


def test_the_instructor_shows_a_process_to_the_class(app):
    client = app.test_client()
    client.post("/api/servers/forking_clock/start", json={"options": {"delay": 30}}, headers=BEARER)
    info = wait_state(manager_of(app), "forking_clock", "RUNNING")
    viewer_page, _ = browser_session(app)
    viewer = live_client(app, viewer_page)
    instructor = live_client(app, auth={"token": TOKEN})
    with socket.create_connection(("127.0.0.1", info["port"])):
        watcher = manager_of(app).watcher
        pid = wait_for(lambda: [p for p, _, _ in watcher.descendants("forking_clock")], 10, "a child")[0]
        ack = viewer.emit("focus", {"server": "forking_clock", "pid": pid}, namespace="/live", callback=True)
        assert ack == {"ok": False, "error": "this needs the instructor's token", "result": None}
        viewer.get_received("/live")
        ack = instructor.emit(
            "focus", {"server": "forking_clock", "pid": pid}, namespace="/live", callback=True
        )
        assert ack["ok"] and ack["result"] == {"server": "forking_clock", "pid": pid}
        focus = wait_for(lambda: received(viewer, "focus"), 5, "the focus event")[0]
        assert (focus["server"], focus["pid"]) == ("forking_clock", pid)
        late = live_client(app, browser_session(app)[0])  # a page opened later follows it too
        assert received(late, "snapshot")[0]["focus"] == {"server": "forking_clock", "pid": pid}
        ack = instructor.emit("focus", {"pid": 1}, namespace="/live", callback=True)
        assert not ack["ok"] and "not a process of any server" in ack["error"]
        ack = instructor.emit("focus", {"pid": None}, namespace="/live", callback=True)
        assert ack == {"ok": True, "error": None, "result": None}
        assert wait_for(lambda: received(viewer, "focus"), 5, "the end of the focus")[-1]["pid"] is None
    for sio in (viewer, instructor, late):
        sio.disconnect(namespace="/live")
