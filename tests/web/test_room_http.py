"""No viewer can take the room down, at the HTTP door: silent connections, connections past
the caps (503 with a sentence), Socket.IO polling handshakes that are never used. Each
flood comes from its own loopback address and is bounded in count and time; /healthz is
timed from 127.0.0.1 throughout.

The dashboard here has short timeouts and small caps (its config says which), so the
bounds it asserts are the configured ones and each test takes seconds.
"""

import http.client
import json
import socket
import threading
import time

import pytest

from tests.helpers import TOKEN, Dashboard, wait_for
from tests.web.floods import Footprint, HealthProbe, baseline_p99
from tests.web.test_room import assert_healthz_kept_up

LIMITS = {
    "request_timeout": 3.0,
    "unused_session_timeout": 1.0,
    "max_connections": 100,
    "max_connections_per_address": 40,
}


@pytest.fixture(scope="module")
def door(tmp_path_factory):
    board = Dashboard(str(tmp_path_factory.mktemp("door")), TOKEN, **LIMITS).start()
    yield board
    board.stop()


def room(board):
    return board.api("GET", "/api/room", token=False)[1]


def connect_from(source, port, timeout=5.0):
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    return sock


def get_from(source, port, path, timeout=5.0):
    """(status, body: JSON as data, else text) of one GET sent at once on a new connection
    from `source`."""
    sock = connect_from(source, port, timeout)
    try:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = response.read()
        if response.getheader("Content-Type", "").startswith("application/json"):
            return response.status, json.loads(body)
        return response.status, body.decode("utf-8", "replace")
    finally:
        sock.close()


def closed_by_peer(sock):
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


@pytest.mark.reliability("floods", "300 silent connections from one address (cap 40 an address, timeout 3 s)")
def test_silent_connections_are_capped_refused_clearly_and_timed_out(door, report):
    quiet = baseline_p99(door.port)
    held, refused = [], []
    with HealthProbe(door.port) as probe, Footprint(door.proc.pid) as threads:
        began = time.monotonic()
        for _ in range(300):
            sock = connect_from("127.0.0.7", door.port)
            held.append(sock)
        opened = time.monotonic() - began
        for sock in held:  # the refused ones have their 503 waiting already
            sock.settimeout(0.2)
            try:
                data = sock.recv(4096)
            except TimeoutError:
                continue
            if data.startswith(b"HTTP/1.1 503"):
                refused.append(json.loads(data.split(b"\r\n\r\n", 1)[1]))
        wait_for(lambda: room(door)["open_connections"] <= 1, 10, "every silent connection closed")
        closed_after = time.monotonic() - began
    for sock in held:
        sock.close()
    assert len(refused) == 300 - 40, len(refused)
    assert all("your address has 40 open connections" in r["error"] for r in refused)
    assert 3.0 <= closed_after < 3.0 + opened + 2.0, f"closed {closed_after:.1f} s after (timeout 3 s)"
    footprint_figures = threads.settled(40 + 8)
    assert_healthz_kept_up(probe, quiet)
    report["cases"] = 300
    report["detail"] = (
        f"40 held, then closed {closed_after:.1f} s after (timeout 3 s); 260 answered 503 at once with a "
        f"sentence; {footprint_figures}; /healthz {probe.figures()} (quiet p99 {quiet:.1f})"
    )


@pytest.mark.reliability("floods", "the total cap: 100 connections from three addresses, then /healthz")
def test_past_the_total_cap_every_address_gets_a_clear_503(door, report):
    held = [
        connect_from(f"127.0.0.{n}", door.port)
        for n, count in ((11, 34), (12, 33), (13, 33))
        for _ in range(count)
    ]
    try:
        answers = []

        def refused():
            began = time.monotonic()
            answers.append((*get_from("127.0.0.1", door.port, "/healthz"), (time.monotonic() - began) * 1000))
            return answers[-1][0] == 503

        wait_for(refused, 5, "the 101st connection refused")
    finally:
        for sock in held:
            sock.close()
    status, body, took = answers[-1]
    assert "the dashboard has 100 open connections, its limit" in body["error"]
    wait_for(lambda: get_from("127.0.0.1", door.port, "/healthz")[0] == 200, 5, "room again")
    report["cases"] = 101
    report["detail"] = f"the 101st (from 127.0.0.1) answered 503 in {took:.1f} ms with a sentence"


@pytest.mark.reliability("floods", "400 Socket.IO polling handshakes from one address, never used")
def test_polling_handshakes_are_rate_limited_capped_and_ended_when_unused(door, report):
    quiet = baseline_p99(door.port)
    statuses = {}
    lock = threading.Lock()

    def handshakes(count):
        for _ in range(count):
            status, _ = get_from("127.0.0.8", door.port, "/socket.io/?EIO=4&transport=polling")
            with lock:
                statuses[status] = statuses.get(status, 0) + 1

    with HealthProbe(door.port) as probe, Footprint(door.proc.pid) as threads:
        began = time.monotonic()
        workers = [threading.Thread(target=handshakes, args=(50,)) for _ in range(8)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        took = time.monotonic() - began
        wait_for(lambda: room(door)["open_sessions"] == 0, 10, "every unused session ended")
    figures = room(door)
    made = statuses.get(200, 0)
    assert sum(statuses.values()) == 400 and set(statuses) <= {200, 429, 503}, statuses
    assert made <= 20 + 5 * took + 1, f"{made} sessions in {took:.1f} s"  # a burst of 20, then 5 a second
    assert figures.get("ended_unused", 0) >= made
    footprint_figures = threads.settled(made + 8 + 10)
    assert_healthz_kept_up(probe, quiet)
    report["cases"] = 400
    report["detail"] = (
        f"{made} sessions made in {took:.1f} s, {statuses.get(429, 0)} refused 429 (too many just now), "
        f"{statuses.get(503, 0)} refused 503; every unused one ended after 1 s; {footprint_figures}; "
        f"/healthz {probe.figures()} (quiet p99 {quiet:.1f})"
    )
