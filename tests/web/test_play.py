"""The embedded clients through the JSON API, each against its real server."""

import threading
import time

import psutil
import pytest

from supervisor.web.play import RateLimiter
from tests.helpers import BEARER, CTIME, browser_session, manager_of, start_ready, wait_for, wait_state


def play(app, name, body, session=None):
    client, headers = session or browser_session(app)
    response = client.post(f"/api/play/{name}", json=body, headers=headers)
    return response.status_code, response.get_json()


@pytest.mark.parametrize("name", ["clock", "clock_udp", "clock_unix", "clock_unix_dgram"])
def test_ask_the_time_shows_the_real_exchange(app, name):
    start_ready(manager_of(app), name)
    status, result = play(app, name, {"nickname": "ada"})
    assert status == 200, result
    assert CTIME.match(result["answer"]) and result["outcome"] == "answered"
    steps = {step["dir"]: step for step in result["transcript"]}
    sent, received = steps["sent"], steps["received"]
    assert sent["bytes"] == 25
    assert sent["text"] == "What·is·the·time?········"  # the padding made visible
    assert received["bytes"] == 25 and received["text"].endswith("\\n")
    assert ("connect" in steps) == (name in ("clock", "clock_unix"))  # only streams connect


def test_asking_after_handle_request_ended_gets_what_a_real_client_gets(app):
    manager = manager_of(app)
    start_ready(manager, "clock", {"once": True})
    session = browser_session(app)
    status, first = play(app, "clock", {"nickname": "ada"}, session)
    assert status == 200 and CTIME.match(first["answer"])
    wait_state(manager, "clock", "EXITED")
    status, second = play(app, "clock", {"nickname": "ada"}, session)
    assert status == 200 and second["outcome"] == "refused"
    assert (
        second["answer"] == f"connection refused: nobody listens on 127.0.0.1:{manager.servers['clock'].port}"
    )


def test_ask_the_forking_server_names_the_child_that_answered(app):
    server = start_ready(manager_of(app), "forking_clock", {"delay": 0.3, "reap": False})
    status, result = play(app, "forking_clock", {"nickname": "ada"})
    assert status == 200 and CTIME.match(result["answer"])
    children = {pid for pid, _, _ in app.extensions["forkwatch"].watcher.descendants("forking_clock")}
    assert result["child_pid"] in children
    assert psutil.Process(result["child_pid"]).ppid() == server.pid
    events = app.extensions["forkwatch"].events_after(0)["events"]
    assert any(f"waiting for child {result['child_pid']}" in e["text"] for e in events)


def test_web_client_fetches_both_pages_with_their_status(app):
    start_ready(manager_of(app), "web")
    session = browser_session(app)
    status, hello = play(app, "web", {"path": "/"}, session)
    assert status == 200 and hello["status"] == 200 and "hello client" in hello["body"]
    assert hello["status_line"].startswith("HTTP/1.0 200")
    status, missing = play(app, "web", {"path": "/test"}, session)
    assert missing["status"] == 404 and "/test not found" in missing["body"]
    status, typed = play(app, "web", {"path": "/any/path?x=1 y"}, session)
    assert typed["status"] == 404 and typed["url"].endswith("/any/path?x=1%20y")
    assert play(app, "web", {"path": "/../etc"}, session)[0] == 400
    assert play(app, "web", {"path": "no-slash"}, session)[0] == 400
    assert play(app, "web", {"path": "/" + "a" * 300}, session)[0] == 400


def test_swap_pairs_two_browsers(app):
    start_ready(manager_of(app), "swap")
    results = {}

    def send(nick, text):
        results[nick] = play(app, "swap", {"nickname": nick, "text": text})

    first = threading.Thread(target=send, args=("alice", "hello from A"))
    first.start()
    wait_for(
        lambda: any(
            "waiting for a swap partner" in e["text"]
            for e in app.extensions["forkwatch"].events_after(0)["events"]
        )
    )
    wait_for(
        lambda: any(
            'sent "alice: hello from A"' in line
            for line in app.extensions["forkwatch"].servers["swap"].output.tail()
        )
    )
    send("bob", "hello from B")
    first.join(30)
    assert results["alice"][1]["partner"] == "bob" and results["alice"][1]["partner_text"] == "hello from B"
    assert results["bob"][1]["partner"] == "alice" and results["bob"][1]["partner_text"] == "hello from A"


def test_number_game_spreads_secret_found(app):
    server = start_ready(manager_of(app), "secret_number")
    secret = int(server.secret)
    first, second = browser_session(app), browser_session(app)
    assert (
        play(app, "secret_number", {"nickname": "ada", "guess": str(secret % 100 + 1)}, first)[1]["answer"]
        == "wrong"
    )
    assert (
        play(app, "secret_number", {"nickname": "ada", "guess": str(secret)}, first)[1]["answer"] == "right"
    )
    assert (
        play(app, "secret_number", {"nickname": "bob", "guess": "1"}, second)[1]["answer"] == "secret found"
    )
    assert play(app, "secret_number", {"nickname": "bob", "guess": "x" * 20}, second)[0] == 400
    plays = [e for e in app.extensions["forkwatch"].events_after(0)["events"] if e["kind"] == "play"]
    # a wrong guess is hidden while the round is on; once it is found, guesses show
    assert [p["text"] for p in plays] == [
        "ada guessed a number: wrong",
        f"ada guessed {secret}: right",
        "bob guessed 1: secret found",
    ]


def test_word_game_shows_the_servers_pages_and_escapes(app):
    server = start_ready(manager_of(app), "guess_word")
    session = browser_session(app)
    status, wrong = play(app, "guess_word", {"nickname": "ada", "word": "<script>alert(1)</script>"}, session)
    assert status == 200 and wrong["status"] == 404 and wrong["outcome"] == "wrong"
    assert "<script>" not in wrong["body"] and "&lt;script&gt;" in wrong["body"]
    assert wrong["url"].startswith("http://127.0.0.1:")
    status, right = play(app, "guess_word", {"nickname": "ada", "word": server.secret.upper()}, session)
    assert right["status"] == 200 and right["outcome"] == "right"
    status, after = play(app, "guess_word", {"nickname": "bob", "word": "anything"})
    assert after["status"] == 200 and after["outcome"] == "already found"


def test_playing_a_stopped_server_says_so(app):
    status, result = play(app, "clock", {})
    assert status == 409 and result == {"error": "the server is not running (clock is stopped)"}


@pytest.mark.parametrize(
    "name, body, words",
    [
        ("clock", {"nickname": "<b>"}, "a nickname is"),
        ("swap", {"text": ""}, "text must be non-empty"),
        ("swap", {"text": "x" * 500}, "too long"),
        ("swap", {"text": "a\u0000b"}, "control characters"),
        ("guess_word", {"word": 5}, "word must be non-empty text"),
        ("fork_demo", {}, "has no embedded client"),
        ("nope", {}, "no server named"),
    ],
)
def test_bad_play_input(app, name, body, words):
    for server in ("clock", "swap", "guess_word"):
        if name == server:
            start_ready(manager_of(app), server)
    status, result = play(app, name, body)
    assert 400 <= status < 500 and words in result["error"], result


def test_play_needs_the_pages_csrf_token(app):
    start_ready(manager_of(app), "clock")
    client = app.test_client()
    client.get("/")
    response = client.post("/api/play/clock", json={})
    assert response.status_code == 403


def test_the_default_rate_limit_is_five_plays_in_any_second(app_factory):
    app = app_factory(play_rate=None)  # the shipped default, not the tests' generous one
    session = browser_session(app)
    began = time.monotonic()
    # The clock server is stopped: each play passes the limiter, then is answered 409 at
    # once, so six fit well within one second even on a busy machine.
    answers = [play(app, "clock", {}, session) for _ in range(6)]
    assert time.monotonic() - began < 1.0, "six plays took a second or more: the window slid"
    assert [status for status, _ in answers[:5]] == [409] * 5
    assert answers[5] == (429, {"error": "slow down: at most 5 requests a second"})


def test_the_limiter_allows_rate_requests_in_any_one_second_window():
    now = [0.0]  # seconds, in steps a float holds exactly
    limiter = RateLimiter(5.0, clock=lambda: now[0])
    moments = [0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.875, 1, 1.0625, 1.125, 1.25, 1.375, 1.4375, 1.5, 1.625, 2]
    allowed = []
    for moment in moments:
        now[0] = moment
        if limiter.allow("viewer"):
            allowed.append(moment)
    assert allowed == [0, 0.125, 0.25, 0.375, 0.5, 1, 1.125, 1.25, 1.375, 1.5, 2]
    for start in allowed:  # never more than five in any window of one second
        assert sum(start <= t < start + 1 for t in allowed) <= 5
    now[0] = 0.0
    slow = RateLimiter(0.1, clock=lambda: now[0])  # one play every 10 s
    assert slow.allow("a") and not slow.allow("a") and slow.allow("b")
    now[0] = 9.875
    assert not slow.allow("a")
    now[0] = 10.0
    assert slow.allow("a")


def test_spawned_fork_clients_appear_as_children_and_leave_nothing(app, client):
    manager = app.extensions["forkwatch"]
    start_ready(manager_of(app), "forking_clock", {"delay": 0, "reap": True})
    response = client.post("/api/servers/forking_clock/clients", json={"count": 5}, headers=BEARER)
    assert response.status_code == 202 and response.get_json()["count"] == 5
    clients = app.extensions["forkwatch_clients"]
    wait_for(lambda: clients.describe() and clients.describe()[0]["alive"] == 5, what="5 clients running")
    wait_for(lambda: len(manager.watcher.descendants("forking_clock")) == 5, what="5 children")
    pids = clients.describe()[0]["pids"]
    assert (
        client.post("/api/servers/forking_clock/clients", json={"count": 51}, headers=BEARER).status_code
        == 400
    )
    assert client.post("/api/clients/stop", headers=BEARER).get_json() == {"stopped": 5}
    assert not [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    wait_for(lambda: not manager.watcher.descendants("forking_clock"), what="the children gone")
    wait_for(lambda: clients.describe() == [], what="the batch ended")
