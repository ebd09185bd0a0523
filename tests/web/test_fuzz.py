"""Bad input at scale (hypothesis): random JSON, names and PIDs to every API route, random payloads
to every Socket.IO event."""

import os
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supervisor.proc.stat import create_time_of, is_alive
from tests.helpers import BEARER, FUZZ, TOKEN, wait_for, wait_state

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


names = st.sampled_from(["clock", "forking_clock", "fork_demo", "secret_number"]) | st.text(max_size=20)


pids = st.integers(min_value=-(2**40), max_value=2**40) | st.sampled_from([0, 1, os.getpid()])


@pytest.mark.reliability("bad input", "random JSON, names and PIDs to every API route (hypothesis)")
def test_every_api_route_answers_bad_input_with_a_4xx(app, report, stranger):
    manager = app.extensions["forkwatch"]
    client = app.test_client()
    routes = [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/")]
    tried = [0]

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def fuzz(data):
        rule = data.draw(st.sampled_from(routes))
        url = rule.rule.replace("<name>", data.draw(names).replace("/", "_") or "x")
        url = url.replace("<int:pid>", str(abs(data.draw(pids))))
        body = data.draw(
            json_values | st.fixed_dictionaries({"create_time": json_values, "signal": json_values})
        )
        method = "POST" if "POST" in rule.methods else "GET"
        tried[0] += 1
        response = client.open(url, method=method, json=body, headers=BEARER)
        assert response.status_code < 500, (url, body, response.get_data())
        if response.status_code >= 400:
            assert set(response.get_json()) == {"error"}
        assert stranger.poll() is None

    fuzz()
    # Whatever the fuzzer started or stopped, the dashboard still works: a fresh server
    # and child, then every PID that must never be signalled, the wrong create_time too.
    manager.stop_all()  # also cancels a lesson step or a comparison the fuzzer began
    assert manager.settle(60)
    assert app.extensions["forkwatch_classroom"].comparisons.wait(60)
    manager.stop_all()
    for server in manager.servers.values():
        assert server.wait_stopped(15)
    manager.start("forking_clock", {"delay": 120})
    wait_state(manager, "forking_clock", "RUNNING")
    sock = socket.create_connection(("127.0.0.1", manager.servers["forking_clock"].port))
    try:
        child_pid, child_time, _ = wait_for(
            lambda: manager.watcher.descendants("forking_clock"), what="a child"
        )[0]
        forbidden = [
            (1, 0.0),
            (os.getpid(), create_time_of(os.getpid())),
            (stranger.pid, create_time_of(stranger.pid)),
            (child_pid, child_time + 3.0),
            (manager.servers["forking_clock"].pid, manager.servers["forking_clock"].create_time),
        ]
        for pid, created in forbidden:
            response = client.post(
                f"/api/processes/{pid}/signal",
                json={"signal": "SIGKILL", "create_time": created},
                headers=BEARER,
            )
            assert response.status_code in (403, 404), (pid, response.get_json())
        assert stranger.poll() is None and is_alive(child_pid, child_time)
        assert manager.servers["forking_clock"].state.name == "RUNNING"
    finally:
        sock.close()
    report["cases"] = tried[0] + len(forbidden)
    report["detail"] = "no 5xx, one error shape, no wrong process ever signalled"


@pytest.mark.reliability("bad input", "random payloads to every Socket.IO event (hypothesis)")
def test_every_socket_event_survives_bad_payloads(app, report):
    manager = app.extensions["forkwatch"]
    manager.start("clock")
    wait_state(manager, "clock", "RUNNING")
    sio = app.extensions["forkwatch_socketio"].test_client(app, namespace="/live", auth={"token": TOKEN})
    events = ["start", "stop", "restart", "kill", "kill_children", "stdin"]
    tried = [0]

    @FUZZ
    @given(event=st.sampled_from(events), payload=json_values)
    def fuzz(event, payload):
        tried[0] += 1
        ack = sio.emit(event, payload, namespace="/live", callback=True)
        assert set(ack) == {"ok", "error", "result"}
        if not ack["ok"]:
            assert isinstance(ack["error"], str) and ack["error"]

    fuzz()
    assert sio.is_connected(namespace="/live")
    sio.disconnect(namespace="/live")
    report["cases"] = tried[0]
    report["detail"] = "every ack {ok, error, result}; no handler crashed"
