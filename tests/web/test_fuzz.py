"""Bad input at scale (hypothesis): random JSON, names and PIDs to every API route, random payloads
to every Socket.IO event."""

import os
import re
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


def some_pids(*known):
    """Any whole number, and often a PID that means something: 0, init, the dashboard
    itself, and `known` (the stranger's, a server's, a child's)."""
    return st.integers(min_value=-(2**40), max_value=2**40) | st.sampled_from([0, 1, os.getpid(), *known])


# Query values: ASCII numbers, and digits that str.isdigit() accepts but int() does not.
query_values = st.integers(-5, 10_000).map(str) | st.text(
    alphabet=st.sampled_from("0123456789\u00b2\u00b3\u2460\u0663\U0001d7d8-x "), max_size=6
)
# Bodies no JSON value above makes: nested past Python's recursion limit, within the 64 KB cap.
deep_bodies = st.integers(1, 30_000).map(lambda depth: b"[" * depth + b"]" * depth) | st.integers(
    1, 10_000
).map(lambda depth: b'{"a":' * depth + b"0" + b"}" * depth)


@pytest.mark.reliability(
    "bad input",
    "random JSON, names, PIDs, lookalike digits in queries and over-nested bodies to every API route (hypothesis)",
)
def test_every_api_route_answers_bad_input_with_a_4xx(app, report, stranger):
    manager = app.extensions["forkwatch"]
    client = app.test_client()
    routes = [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/")]
    tried = [0]
    manager.start("forking_clock", {"delay": 120})
    server = wait_state(manager, "forking_clock", "RUNNING")
    sock = socket.create_connection(("127.0.0.1", server["port"]))
    child_pid, child_time, _ = wait_for(lambda: manager.watcher.descendants("forking_clock"), what="a child")[
        0
    ]
    stranger_time = create_time_of(stranger.pid)
    pids = some_pids(stranger.pid, server["pid"], child_pid)
    # Create times that are right for the stranger (which is in no tree) and wrong for the child.
    create_times = json_values | st.sampled_from([stranger_time, child_time + 3.0, child_time - 1.0])
    signals = json_values | st.sampled_from(["SIGKILL", "SIGTERM", "SIGSTOP"])

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def fuzz(data):
        rule = data.draw(st.sampled_from(routes))
        pid = abs(data.draw(pids))
        url = rule.rule.replace("<name>", data.draw(names).replace("/", "_") or "x")
        url = url.replace("<int:pid>", str(pid))
        body = data.draw(
            json_values | st.fixed_dictionaries({"create_time": create_times, "signal": signals})
        )
        method = "POST" if "POST" in rule.methods else "GET"
        if method == "GET":
            url += f"?tail={data.draw(query_values)}&after={data.draw(query_values)}"
        raw = data.draw(st.none() | deep_bodies)
        child_was_alive = is_alive(child_pid, child_time)
        tried[0] += 1
        if raw is None:
            response = client.open(url, method=method, json=body, headers=BEARER)
        else:
            response = client.open(
                url, method=method, data=raw, headers={**BEARER, "Content-Type": "application/json"}
            )
        assert response.status_code < 500, (url, body, response.get_data())
        if response.status_code >= 400:
            assert set(response.get_json()) == {"error"}
        assert stranger.poll() is None and is_alive(stranger.pid, stranger_time)
        if rule.rule == "/api/processes/<int:pid>/signal" and pid == child_pid and child_was_alive:
            assert is_alive(child_pid, child_time), f"the child was signalled with create_time {body}"

    try:
        fuzz()
    finally:
        sock.close()
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


# What a Socket.IO control event may answer: the payload checks of supervisor/web/live.py and
# the manager's refusals. Any other error (a Python exception's words) is a handler bug.
KNOWN_SOCKET_ERRORS = [
    r"the event's data must be an object",
    r"(name|line|signal) must be text",
    r"(options) must be an object",
    r"pid must be a whole number",
    r"create_time must be a number",
    r"there is no server named .*",
    r"there is no process \d+ \(it has exited\)",
    r"pid must be a positive whole number",
    r"PID 1 is the system's init process; forkwatch never signals it",
    r"that is the dashboard itself; use Ctrl-C where it runs",
    r"PID \d+ is not a process of any server forkwatch runs",
    r"PID \d+ is the \w+ server itself; use Stop",
    r"unknown signal .*; use one of .*",
    r"options must be an object of name: value",
    r"\w+ has no option .* \(its options: .*\)",
    r"option \w+ must be (true or false|a number|a whole number|between .* and .*)",
    r"\w+ is already (starting|stopping|running|starting|backoff)",
    r"\w+ is stopping; start it again when it has stopped",
    r"\w+ is not running( \(\w+\))?",
    r"\w+ does not read its input",
    r"line must be text of at most \d+ characters, without line breaks",
]


def is_known_socket_error(error):
    return any(re.fullmatch(pattern, error, re.DOTALL) for pattern in KNOWN_SOCKET_ERRORS)


socket_names = st.sampled_from(["clock", "forking_clock", "fork_demo", "nope"]) | json_values
socket_payloads = json_values | st.fixed_dictionaries(
    {},
    optional={
        "name": socket_names,
        "options": json_values | st.fixed_dictionaries({}, optional={"delay": json_values}),
        "pid": some_pids() | json_values,
        "create_time": json_values,
        "signal": st.sampled_from(["SIGTERM", "sigkill", "\u017figkill", "SIGBOGUS"]) | json_values,
        "line": json_values,
    },
)


@pytest.mark.reliability("bad input", "random payloads to every Socket.IO event (hypothesis)")
def test_every_socket_event_survives_bad_payloads(app, report):
    manager = app.extensions["forkwatch"]
    manager.start("clock")
    wait_state(manager, "clock", "RUNNING")
    sio = app.extensions["forkwatch_socketio"].test_client(app, namespace="/live", auth={"token": TOKEN})
    events = ["start", "stop", "restart", "kill", "kill_children", "stdin"]
    tried, refused = [0], [0]

    @FUZZ
    @given(event=st.sampled_from(events), payload=socket_payloads)
    def fuzz(event, payload):
        tried[0] += 1
        ack = sio.emit(event, payload, namespace="/live", callback=True)
        assert set(ack) == {"ok", "error", "result"}
        if not ack["ok"]:
            refused[0] += 1
            assert is_known_socket_error(ack["error"]), (event, payload, ack)

    fuzz()
    assert sio.is_connected(namespace="/live")
    sio.disconnect(namespace="/live")
    assert manager.settle(60)
    report["cases"] = tried[0]
    report["detail"] = (
        f"every ack {{ok, error, result}}; {refused[0]} refusals, each one of the known sentences; no handler crashed"
    )
