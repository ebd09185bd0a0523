"""The lecture hall's routes and events: the stage, the lesson's steps and the
comparisons, through the JSON API and Socket.IO /live, as the instructor and as a viewer."""

import pytest

from tests.helpers import (
    BEARER,
    browser_session,
    live_client,
    manager_of,
    received,
    start_ready,
    wait_for,
    wait_state,
)


def test_a_viewer_reads_the_stage_the_lesson_and_the_comparisons(client):
    assert client.get("/api/stage").get_json() == {"kind": None, "name": None, "t": None}
    lesson = client.get("/api/lesson").get_json()
    assert (lesson["step"], lesson["of"]) == (0, len(lesson["steps"])) and lesson["of"] >= 11
    assert lesson["steps"][0]["title"] == "The clock server and its client"
    listing = client.get("/api/comparisons").get_json()
    assert [c["name"] for c in listing["comparisons"]] == [
        "threads_processes",
        "once_forever",
        "transports",
        "cpu",
    ]
    assert listing["run"] is None


@pytest.mark.parametrize(
    "path, body",
    [
        ("/api/stage", {"kind": "server", "name": "clock"}),
        ("/api/lesson/next", None),
        ("/api/lesson/back", None),
        ("/api/lesson/go", {"step": 1}),
        ("/api/comparisons/transports/run", {}),
    ],
)
def test_only_the_instructor_moves_the_room(app, path, body):
    client, headers = browser_session(app)
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == 401 and response.get_json() == {
        "error": "this needs the instructor's token"
    }
    assert app.extensions["forkwatch_classroom"].stage["kind"] is None


def test_the_stage_goes_to_every_page(app, client):
    viewer = live_client(app, client)
    assert received(viewer, "snapshot")[0]["stage"]["kind"] is None
    response = client.post("/api/stage", json={"kind": "server", "name": "forking_clock"}, headers=BEARER)
    assert response.status_code == 200 and response.get_json()["name"] == "forking_clock"
    (stage,) = received(viewer, "stage")
    assert (stage["kind"], stage["name"]) == ("server", "forking_clock")
    late = live_client(app, app.test_client())  # a page that joins later follows it too
    assert received(late, "snapshot")[0]["stage"]["name"] == "forking_clock"
    for body, status, words in [
        ({"kind": "server", "name": "nope"}, 404, "there is no server named 'nope'"),
        ({"kind": "stadium", "name": "x"}, 400, "kind must be one of"),
        ({"kind": 3}, 400, "kind must be text"),
        ({"kind": "recording", "name": "999"}, 404, "there is no recording named '999'"),
        ({"kind": "recording", "name": "\u00b2"}, 404, "there is no recording named"),
        ({"kind": "recording", "name": "9" * 23}, 404, "there is no recording named"),
        ([1], 400, "the body must be a JSON object"),
    ]:
        response = client.post("/api/stage", json=body, headers=BEARER)
        assert response.status_code == status and words in response.get_json()["error"], response.get_json()
    assert client.post("/api/stage", json={}, headers=BEARER).get_json()["kind"] is None  # clears it
    viewer.disconnect(namespace="/live")
    late.disconnect(namespace="/live")


def test_next_walks_the_lecture_and_every_page_sees_the_step(app, client):
    viewer = live_client(app, client)
    response = client.post("/api/lesson/next", headers=BEARER)
    assert response.status_code == 202
    assert (
        response.get_json()["step"] == 1 and response.get_json()["title"] == "The clock server and its client"
    )
    (lesson,) = received(viewer, "lesson")
    assert (lesson["step"], lesson["title"], len(lesson["watch"])) == (
        1,
        "The clock server and its client",
        2,
    )
    wait_state(manager_of(app), "clock", "RUNNING")
    wait_for(
        lambda: app.extensions["forkwatch_classroom"].stage["name"] == "clock", 10.0, "the clock on stage"
    )
    assert client.post("/api/lesson/back", headers=BEARER).status_code == 409  # the first step
    assert client.post("/api/lesson/go", json={"step": "x"}, headers=BEARER).status_code == 400
    response = client.post("/api/lesson/go", json={"step": 99}, headers=BEARER)
    assert response.status_code == 409 and "the last step" in response.get_json()["error"]
    assert manager_of(app).settle(30)
    viewer.disconnect(namespace="/live")


def test_a_comparison_runs_in_one_call_and_reports_as_it_goes(app, client):
    viewer = live_client(app, client)
    response = client.post("/api/comparisons/transports/run", json={}, headers=BEARER)
    assert response.status_code == 202 and response.get_json()["running"] == "transports"
    classroom = app.extensions["forkwatch_classroom"]
    assert classroom.comparisons.wait(30)
    runs = received(viewer, "compare")
    assert runs[0]["state"] == "running" and runs[-1]["state"] == "done"
    assert len(runs) > 4  # progress: each side starting, asking, done
    assert [s["answered"] for s in runs[-1]["sides"]] == [1, 1, 1, 1]
    assert classroom.stage["kind"] == "compare" and classroom.stage["name"] == "transports"
    assert client.get("/api/comparisons").get_json()["run"]["state"] == "done"
    for path, body, status in [
        ("/api/comparisons/nope/run", {}, 404),
        ("/api/comparisons/threads_processes/run", {"clients": 50}, 400),
        ("/api/comparisons/threads_processes/run", {"seconds": "1"}, 400),
        ("/api/comparisons/transports/run", {"seconds": 2}, 400),
    ]:
        assert client.post(path, json=body, headers=BEARER).status_code == status, (path, body)
    viewer.disconnect(namespace="/live")


def test_finding_the_secret_is_announced_with_the_finder(app):
    server = start_ready(manager_of(app), "secret_number")
    session = browser_session(app)
    viewer = live_client(app, session[0])
    for guess in (str(int(server.secret) % 100 + 1), server.secret):
        session[0].post(
            "/api/play/secret_number", json={"nickname": "ada", "guess": guess}, headers=session[1]
        )
    plays = received(viewer, "play")
    assert [p.get("found", False) for p in plays] == [False, True]
    assert plays[1]["who"] == "ada"
    viewer.disconnect(namespace="/live")
