"""The JSON API through Flask's test client, with real servers behind it: roles on every control
route, the lifecycle, one error shape, output, events and signals."""

import contextlib
import socket

import pytest

from tests.helpers import BEARER, browser_session, manager_of, wait_for, wait_state

# --- auth on every control route ------------------------------------------------------------


def control_routes(app, with_methods=False):
    routes = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if getattr(view, "instructor_only", False):
            url = rule.rule.replace("<name>", "clock").replace("<int:pid>", "1").replace("<rid>", "1")
            [method] = rule.methods - {"HEAD", "OPTIONS"}
            routes.append((method, url) if with_methods else url)
    return routes


def test_every_control_route_is_enumerated(app):
    routes = control_routes(app)
    assert len(routes) >= 11
    for expected in (
        "/api/servers/clock/start",
        "/api/stop-all",
        "/api/processes/1/signal",
        "/api/servers/clock/stdin",
    ):
        assert expected in routes


@pytest.mark.reliability(
    "intruders", "every control route without / with a wrong token (enumerated from the app)"
)
def test_every_control_route_refuses_without_the_token(app, client, report):
    routes = control_routes(app, with_methods=True)
    report["cases"] = 2 * len(routes)
    for n, (method, url) in enumerate(routes):
        response = client.open(url, method=method, json={})
        assert response.status_code == 401, url
        assert response.get_json() == {"error": "this needs the instructor's token"}
        # each wrong token from its own address: one address is throttled after ten
        wrong = client.open(
            url,
            method=method,
            json={},
            headers={"Authorization": "Bearer nope"},
            environ_base={"REMOTE_ADDR": f"192.0.2.{n}"},
        )
        assert wrong.status_code == 403, url
    assert all(s.state.name == "STOPPED" for s in manager_of(app).servers.values())


def test_cookie_session_needs_the_csrf_token(app):
    client, _ = browser_session(app, instructor=True)
    response = client.post("/api/servers/clock/start", json={})
    assert response.status_code == 403 and "CSRF" in response.get_json()["error"]
    response = client.post("/api/servers/clock/start", json={}, headers={"X-CSRF-Token": "forged"})
    assert response.status_code == 403


def test_viewer_forged_control_with_its_own_csrf_is_refused(app):
    client, headers = browser_session(app)
    response = client.post("/api/servers/clock/start", json={}, headers=headers)
    assert response.status_code == 401


# --- the lifecycle through the API ------------------------------------------------------------


def test_start_stop_restart_with_the_session_and_csrf(app):
    client, headers = browser_session(app, instructor=True)
    response = client.post(
        "/api/servers/forking_clock/start", json={"options": {"delay": 0, "reap": True}}, headers=headers
    )
    assert response.status_code == 200 and response.get_json()["state"] == "STARTING"
    wait_state(manager_of(app), "forking_clock", "RUNNING")
    listing = {s["name"]: s for s in client.get("/api/servers").get_json()}
    assert listing["forking_clock"]["state"] == "RUNNING" and listing["forking_clock"]["port"] > 0
    first_pid = listing["forking_clock"]["pid"]
    assert client.post("/api/servers/forking_clock/restart", headers=headers).status_code == 202
    wait_for(lambda: manager_of(app).servers["forking_clock"].pid != first_pid, what="a new PID")
    wait_state(manager_of(app), "forking_clock", "RUNNING")
    assert manager_of(app).servers["forking_clock"].options["reap"] is True
    assert client.post("/api/servers/forking_clock/stop", headers=headers).status_code == 200
    wait_state(manager_of(app), "forking_clock", "STOPPED")


def test_bearer_token_needs_no_csrf(app, client):
    response = client.post("/api/servers/clock/start", headers=BEARER)
    assert response.status_code == 200
    wait_state(manager_of(app), "clock", "RUNNING")
    assert client.post("/api/stop-all", headers=BEARER).get_json()["stopping"] == ["clock"]
    wait_state(manager_of(app), "clock", "STOPPED")


@pytest.mark.parametrize(
    "url, body, status, words",
    [
        ("/api/servers/nope/start", {}, 404, "no server named 'nope'"),
        ("/api/servers/forking_clock/start", {"options": {"delay": "soon"}}, 400, "must be a number"),
        ("/api/servers/forking_clock/start", {"options": {"colour": 1}}, 400, "no option 'colour'"),
        ("/api/servers/forking_clock/start", {"options": [1]}, 400, "options must be an object"),
        ("/api/servers/clock/stop", {}, 409, "is not running"),
        ("/api/servers/clock/kill-children", {}, 409, "is not running"),
        ("/api/servers/clock/interrupt", {}, 409, "clock is not running (stopped)"),
        ("/api/servers/nope/interrupt", {}, 404, "no server named 'nope'"),
        ("/api/servers/clock/stdin", {"line": "x"}, 400, "does not read its input"),
        ("/api/servers/fork_demo/stdin", {}, 400, "line must be text"),
        ("/api/servers/fork_demo/stdin", {"line": "a\nb"}, 400, "without line breaks"),
        ("/api/processes/1/signal", {"create_time": 0}, 403, "init"),
        ("/api/processes/1/signal", {}, 400, "create_time must be a number"),
        ("/api/processes/999999/signal", {"create_time": 1.5, "signal": "SIGBOGUS"}, 400, "unknown signal"),
        ("/api/processes/1/signal", {"create_time": 0, "signal": "\u017figkill"}, 400, "unknown signal"),
        ("/api/servers/clock/kill-children", {"signal": "\u017figkill"}, 400, "unknown signal"),
        ("/api/servers/clock/secret", {}, 400, "has no secret"),
        ("/api/servers/forking_clock/clients", {"count": 5}, 409, "not running"),
        ("/api/servers/forking_clock/clients", {"count": "5"}, 400, "count must be a whole number"),
        ("/api/servers/clock/clients", {"count": 5}, 400, "talk to the forking clock"),
    ],
)
def test_bad_requests_get_one_clear_error_shape(client, url, body, status, words):
    response = client.post(url, json=body, headers=BEARER)
    assert response.status_code == status, response.get_json()
    data = response.get_json()
    assert list(data) == ["error"] and words in data["error"]


@pytest.mark.reliability("bad input", "malformed JSON and a 100 KB body")
def test_malformed_and_huge_bodies(client, report):
    report["cases"] = 2
    response = client.post(
        "/api/servers/clock/start",
        data=b"\xff{not json",
        headers={**BEARER, "Content-Type": "application/json"},
    )
    assert response.status_code == 400 and response.get_json() == {"error": "the body must be a JSON object"}
    response = client.post(
        "/api/servers/clock/start",
        data=b"[" * 100_000,
        headers={**BEARER, "Content-Type": "application/json"},
    )
    assert response.status_code == 413 and "too large" in response.get_json()["error"]


@pytest.mark.reliability(
    "bad input", "digits that are not ASCII (², ①) in ?tail= and ?after=, a 60 KB body of nested arrays"
)
def test_lookalike_digits_and_deep_nesting_get_a_400_sentence_not_a_traceback(client, caplog, report):
    cases = [
        ("GET", "/api/servers/clock/output?tail=\u00b2", None, "tail must be a whole number"),
        ("GET", "/api/servers/clock/output?tail=\u0663", None, "tail must be a whole number"),
        ("GET", "/api/events?after=\u2460", None, "after must be an event id"),
        ("GET", "/api/events?after=\U0001d7d8", None, "after must be an event id"),
        ("POST", "/api/servers/clock/start", b"[" * 30_000 + b"]" * 30_000, "nested too deeply"),
        ("POST", "/api/play/clock", b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "nested too deeply"),
    ]
    for method, url, data, words in cases:
        response = client.open(
            url, method=method, data=data, headers={**BEARER, "Content-Type": "application/json"}
        )
        assert response.status_code == 400, (url, response.status_code)
        assert list(response.get_json()) == ["error"] and words in response.get_json()["error"], url
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")], caplog.text
    report["cases"] = len(cases)
    report["detail"] = "400 with a sentence each; no traceback logged"


def test_get_on_an_action_is_not_allowed_and_unknown_routes_are_json(client):
    response = client.get("/api/servers/clock/start")
    assert response.status_code == 405 and "POST" in response.get_json()["error"]
    assert client.get("/api/nothing").get_json() == {"error": "there is no such route"}


def test_output_and_events(app, client):
    client.post("/api/servers/clock/start", headers=BEARER)
    wait_state(manager_of(app), "clock", "RUNNING")
    port = manager_of(app).servers["clock"].port
    lines = wait_for(
        lambda: client.get("/api/servers/clock/output?tail=5").get_json()["lines"], what="output"
    )
    assert lines[0] == f"listening on tcp://127.0.0.1:{port}"
    assert client.get("/api/servers/clock/output?tail=lots").status_code == 400
    events = client.get("/api/events?after=0").get_json()
    assert [e["kind"] for e in events["events"]][:2] == ["start", "ready"]
    later = client.get(f"/api/events?after={events['last']}").get_json()
    assert later["events"] == []
    assert client.get("/api/events?after=-1").status_code == 400


def test_kill_children_and_signal_through_the_api(app, client):
    from supervisor.proc.stat import is_alive

    client.post("/api/servers/forking_clock/start", json={"options": {"delay": 60}}, headers=BEARER)
    wait_state(manager_of(app), "forking_clock", "RUNNING")
    port = manager_of(app).servers["forking_clock"].port
    with contextlib.ExitStack() as stack:
        for _ in range(3):
            stack.enter_context(socket.create_connection(("127.0.0.1", port)))
        detail = wait_for(
            lambda: (d := client.get("/api/servers/forking_clock").get_json())["children"] == 3 and d,
            what="3 children",
        )
        child = detail["tree"][1]
        assert child["peer"].startswith("127.0.0.1:") and child["status"] in ("sleeping", "running")
        kill = {"signal": "SIGKILL", "create_time": child["create_time"]}
        response = client.post(f"/api/processes/{child['pid']}/signal", json=kill, headers=BEARER)
        assert response.status_code == 200
        wait_for(lambda: not is_alive(child["pid"], child["create_time"]), what="the child dead")
        response = client.post(f"/api/processes/{child['pid']}/signal", json=kill, headers=BEARER)
        assert response.status_code == 409 and "zombie" in response.get_json()["error"]
        result = client.post(
            "/api/servers/forking_clock/kill-children", json={"signal": "SIGKILL"}, headers=BEARER
        ).get_json()
        assert len(result["killed"]) == 2
        assert [s["pid"] for s in result["skipped"]] == [child["pid"]]


def test_secret_reveal_and_new_round(app, client):
    client.post("/api/servers/secret_number/start", headers=BEARER)
    wait_state(manager_of(app), "secret_number", "RUNNING")
    secret = client.post("/api/servers/secret_number/secret", headers=BEARER).get_json()["secret"]
    assert 1 <= int(secret) <= 100
    page = client.get("/").get_data(as_text=True)
    assert f'"secret": "{secret}"' not in page and "FORKWATCH_SECRET" not in page
    old_pid = manager_of(app).servers["secret_number"].pid
    assert client.post("/api/servers/secret_number/new-round", headers=BEARER).status_code == 202
    wait_for(lambda: manager_of(app).servers["secret_number"].pid not in (None, old_pid), what="a new game")
    wait_state(manager_of(app), "secret_number", "RUNNING")
