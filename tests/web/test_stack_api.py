"""GET /api/processes/PID/stack through Flask's test client: real py-spy on a real forking
clock child; who may see what (locals and the stdlib's lines only for the instructor); the
refusals and the rate limit."""

import socket

from tests.helpers import BEARER, browser_session, manager_of, wait_for, wait_state


def started(app, name, options):
    client = app.test_client()
    assert (
        client.post(f"/api/servers/{name}/start", json={"options": options}, headers=BEARER).status_code
        == 200
    )
    return wait_state(manager_of(app), name, "RUNNING")


def a_child(app, name="forking_clock"):
    manager = manager_of(app)
    return wait_for(lambda: [pid for pid, _, _ in manager.watcher.descendants(name)], 10, "a child")[0]


def test_anyone_sees_the_lecture_lines_and_only_the_instructor_more(app):
    info = started(app, "forking_clock", {"delay": 30})
    viewer, _ = browser_session(app)
    with socket.create_connection(("127.0.0.1", info["port"])):
        pid = a_child(app)
        answer = wait_for(
            lambda: (
                (r := viewer.get(f"/api/processes/{pid}/stack").get_json())["frames"][0]["function"]
                == "handle_client"
                and r
            ),
            10,
            "the child in its delay",
        )
        top = answer["frames"][0]
        assert top["code"] == "time.sleep(delay)" and top["source"] == "/source/servers/forking_clock.py"
        assert any(f["source"] is None and f["code"] is None for f in answer["frames"])
        refused = viewer.get(f"/api/processes/{pid}/stack?locals=1")
        assert refused.status_code == 403 and "instructor" in refused.get_json()["error"]
        full = app.test_client().get(f"/api/processes/{info['pid']}/stack?locals=1", headers=BEARER)
        assert full.status_code == 200
        assert all(f["code"] for f in full.get_json()["frames"] if not f["file"].startswith("<"))
        assert {v["name"] for v in full.get_json()["locals"]} >= {"self"}  # socket.accept's frame
        wrong = app.test_client().get(f"/api/processes/{pid}/stack", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403


def test_refusals_speak_json_with_their_status(app, stranger):
    client = app.test_client()
    info = started(app, "forking_clock", {"delay": 0})
    with socket.create_connection(("127.0.0.1", info["port"])) as sock:
        pid = a_child(app)
        sock.sendall(b"What is the time?".ljust(25))
        sock.recv(64)
    wait_for(lambda: client.get(f"/api/processes/{pid}/stack").status_code == 409, 10, "the zombie refused")
    assert "zombie" in client.get(f"/api/processes/{pid}/stack").get_json()["error"]
    assert client.get(f"/api/processes/{stranger.pid}/stack").status_code == 403
    gone = client.get(f"/api/processes/{2**22 + 1}/stack")
    assert gone.status_code == 404 and gone.get_json() == {
        "error": f"there is no process {2**22 + 1} (it has exited)"
    }
    assert client.get("/api/processes/0/stack").status_code == 400
    assert client.get("/api/processes/-5/stack").status_code == 404  # not a PID route at all
    assert client.get("/api/processes/abc/stack").get_json() == {"error": "there is no such route"}


def test_stack_reads_are_rate_limited_per_session(app_factory):
    app = app_factory(play_rate=0.01)  # one read every 100 s
    info = started(app, "clock", {})
    viewer, _ = browser_session(app)
    assert viewer.get(f"/api/processes/{info['pid']}/stack").status_code == 200
    slowed = viewer.get(f"/api/processes/{info['pid']}/stack")
    assert slowed.status_code == 429 and slowed.get_json()["error"].startswith("slow down")
