"""The Check button's route and event, with real servers behind them: deliberately wrong
students' solutions have each fault named, the lecture's own servers pass every check,
only the instructor may start a run, one run per server at a time, and every page gets
each result as it ends (the snapshot has the last run)."""

import os

import pytest

from tests import helpers
from tests.core.check_support import SOLUTIONS
from tests.helpers import BEARER, TOKEN, browser_session, live_client, manager_of, received, wait_for

WRONG = [
    {"file": os.path.join(SOLUTIONS, "secret_per_process.py"), "exercise": "secret_number", "name": "secret"},
    {"file": os.path.join(SOLUTIONS, "word_unescaped.py"), "exercise": "guess_word", "name": "word"},
    {
        "file": os.path.join(SOLUTIONS, "forking_clock_keeps_copy.py"),
        "exercise": "forking_clock",
        "name": "fclock",
        "options": {"delay": "0"},
    },
]
SWAP_TABLE = {
    "command": [
        "{python}",
        os.path.join(SOLUTIONS, "swap_own_line.py"),
        "--port",
        "{port}",
        "--timeout",
        "{timeout}",
    ],
    "exercise": "swap",
    "options": {"timeout": 1},
}


def ended(client, name, timeout=60.0):
    """The run's summary once it has ended."""

    def done():
        answer = client.get(f"/api/servers/{name}/check")
        summary = answer.get_json() if answer.status_code == 200 else None
        return summary and summary["state"] != "running" and summary

    return wait_for(done, timeout, f"the check of {name} to end")


def faults(summary):
    return {result["name"]: result["fault"] for result in summary["results"] if result["passed"] is False}


def test_the_check_route_names_the_fault_of_each_wrong_solution(app_factory):
    app = app_factory(serve=WRONG, servers={**helpers.ALL_PORTS_FREE, "team_swap": SWAP_TABLE})
    client = app.test_client()
    names = ["secret", "word", "fclock", "team_swap"]
    for name in names:  # one run per server, all at once
        answer = client.post(f"/api/servers/{name}/check", headers=BEARER)
        assert answer.status_code == 202, answer.get_json()
        assert answer.get_json()["server"] == name
    summaries = {name: ended(client, name) for name in names}
    for name, summary in summaries.items():
        assert summary["state"] == "failed" and summary["error"] is None, (name, summary)
        assert len(summary["results"]) == summary["total"]

    assert (
        "a swap server that answers a client its own line"
        in faults(summaries["team_swap"])["swap.pair_in_order"]
    )
    secret = faults(summaries["secret"])
    assert secret["secret_number.two_connected"] == (
        "secret-number state is per process under forking: two clients both heard `right`"
    )
    assert "20 of 20 guessers heard `right`" in secret["secret_number.twenty_at_once"]
    assert list(faults(summaries["word"])) == ["guess_word.escaped"]
    fclock = faults(summaries["fclock"])
    assert fclock["forking_clock.eof"] == (
        "the forking parent never closes its copy of the client socket: the client never sees EOF"
    )
    assert "still holds 1 of 3 sockets of clients that left" in fclock["forking_clock.parent_closes"]

    words = [e["text"] for e in manager_of(app).history.after(0) if e["kind"] == "check"]
    assert "secret: 1 of 4 checks passed; failed: " in " ".join(words), words


def test_the_lecture_servers_pass_every_check_from_the_dashboard(app):
    manager = manager_of(app)
    client = app.test_client()
    helpers.start_ready(manager, "swap", {"timeout": 1})
    helpers.start_ready(manager, "forking_clock", {"delay": 0, "reap": True})
    helpers.start_ready(manager, "secret_number", {"forking": True})
    names = ["swap", "forking_clock", "secret_number", "guess_word", "clock"]
    for name in names:
        assert client.post(f"/api/servers/{name}/check", headers=BEARER).status_code == 202
    for name in names:
        summary = ended(client, name)
        assert summary["state"] == "passed", (name, faults(summary), summary["error"])
        assert summary["passed"] == summary["total"] == len(summary["checks"])
    assert manager.servers["forking_clock"].options["delay"] == 0.0, "restarted with the options it had"


def test_only_the_instructor_starts_a_run_and_one_at_a_time(app_factory):
    app = app_factory(serve=[WRONG[0]])
    viewer, csrf = browser_session(app)
    refused = viewer.post("/api/servers/secret/check", headers=csrf)
    assert refused.status_code == 401, refused.get_json()
    instructor, csrf = browser_session(app, instructor=True)
    assert instructor.post("/api/servers/secret/check", headers=csrf).status_code == 202
    again = instructor.post("/api/servers/secret/check", headers=csrf)
    assert again.status_code == 409
    assert again.get_json()["error"].startswith("a check of secret is already running")
    ended(instructor, "secret")
    no_exercise = instructor.post("/api/servers/web/check", headers=csrf)
    assert no_exercise.status_code == 400 and "solves no exercise" in no_exercise.get_json()["error"]
    assert instructor.post("/api/servers/nothing/check", headers=csrf).status_code == 404
    assert instructor.get("/api/servers/clock/check").get_json() == {
        "error": "clock has not been checked yet"
    }


@pytest.mark.parametrize("role", ["viewer", "instructor"])
def test_every_page_gets_each_result_and_the_secret_stays_hidden(app_factory, role):
    app = app_factory(serve=[WRONG[0]])
    viewer = live_client(app, app.test_client())
    instructor = live_client(app, auth={"token": TOKEN})
    sender = viewer if role == "viewer" else instructor
    ack = sender.emit("check", {"name": "secret"}, namespace="/live", callback=True)
    if role == "viewer":
        assert ack == {"ok": False, "error": "this needs the instructor's token", "result": None}
        assert manager_of(app).checks.summaries() == {}
        return
    assert ack["ok"] is True and ack["result"]["exercise"] == "secret_number"
    summary = ended(app.test_client(), "secret")
    events = []  # received() takes what came so far: gather until the "end", which follows the summary

    def ended_event():
        events.extend(received(viewer, "check"))
        return events and events[-1]["kind"] == "end"

    wait_for(ended_event, 10.0, "the check's end event")
    assert [e["kind"] for e in events] == ["begin", "result", "result", "result", "result", "end"]
    assert events[-1]["summary"]["failed"] == summary["failed"] == 3
    right_guesses = []  # what each client sent just before it heard `right`
    for event in events[1:5]:
        last_sent = {}
        for step in event["result"]["transcript"]:
            if step["dir"] == "sent":
                last_sent[step["who"]] = step["text"]
            elif step["dir"] == "received" and step["text"] == "right\\n":
                right_guesses.append(last_sent[step["who"]])
    assert right_guesses and set(right_guesses) == {"[secret]\\n"}, right_guesses
    fresh = live_client(app, app.test_client())
    assert received(fresh, "snapshot")[0]["checks"]["secret"]["results"] == summary["results"]
    for sio in (viewer, instructor, fresh):
        sio.disconnect(namespace="/live")
