"""The room's stage and the lesson's steps, with real servers: Next starts what a step
needs with its options and stages it; the next step stops what the lesson started and
no longer needs, but never a server the instructor started by hand."""

import pytest

from supervisor.core.catalog import build_catalog
from supervisor.core.classroom import Classroom
from supervisor.core.comparison_run import Comparisons
from supervisor.core.fork_clients import ForkClients
from supervisor.core.lesson import parse
from supervisor.core.process import CommandError
from tests.helpers import start_ready, wait_for, wait_state

PLAN = {
    "title": "a short lesson",
    "step": [
        {"title": "the clock", "watch": ["ask it"], "start": {"clock": {}}},
        {
            "title": "forking, with clients",
            "watch": ["children come and go"],
            "start": {"forking_clock": {"delay": 0.2, "reap": True}},
            "clients": {"forking_clock": 2},
        },
        {"title": "four transports", "watch": "run them", "stage": "compare:transports", "run": True},
    ],
}


@pytest.fixture
def room(manager_factory):
    manager, recorder = manager_factory()
    clients = ForkClients(manager, 10)
    comparisons = Comparisons(manager)
    lesson = parse(PLAN, "test", build_catalog(), comparisons.known)
    yield Classroom(manager, clients, comparisons, lesson), manager, recorder
    assert manager.settle(30)
    assert comparisons.wait(60)
    clients.stop_all()


def test_next_starts_the_step_stages_it_and_tells_the_room(room):
    classroom, manager, recorder = room
    assert classroom.lesson_state()["step"] == 0
    state = classroom.next()
    assert state == {
        "step": 1,
        "of": 3,
        "title": "the clock",
        "watch": ["ask it"],
        "lesson": "a short lesson",
    }
    assert recorder.of("lesson")[-1]["step"] == 1
    wait_state(manager, "clock", "RUNNING")
    wait_for(lambda: classroom.stage["name"] == "clock", 10.0, "the clock on stage")
    assert recorder.of("stage")[-1]["kind"] == "server"


def test_the_next_step_stops_what_the_lesson_started_but_not_what_the_instructor_did(room):
    classroom, manager, recorder = room
    start_ready(manager, "web")  # by hand
    classroom.next()
    wait_state(manager, "clock", "RUNNING")
    wait_for(lambda: classroom.stage["name"] == "clock", 10.0, "step 1 on stage")
    classroom.next()
    info = wait_state(manager, "forking_clock", "RUNNING")
    assert info["options"]["delay"] == 0.2 and info["options"]["reap"] is True
    wait_for(lambda: classroom.stage["name"] == "forking_clock", 10.0, "step 2 on stage")
    wait_state(manager, "clock", "STOPPED")
    assert manager.servers["web"].state.name == "RUNNING"
    wait_for(
        lambda: sum(g["alive"] for g in classroom.clients.describe()) == 2,
        15.0,
        "the step's two looping clients",
    )
    # Back to step 1: the forking server and its clients go, the clock comes back
    classroom.back()
    wait_state(manager, "clock", "RUNNING")
    wait_state(manager, "forking_clock", "STOPPED")
    wait_for(lambda: not classroom.clients.describe(), 15.0, "the clients gone")


def test_a_step_that_runs_a_comparison_stages_and_runs_it(room):
    classroom, manager, recorder = room
    classroom.go(3)
    wait_for(
        lambda: recorder.of("compare") and recorder.of("compare")[-1]["state"] == "done", 30.0, "the run"
    )
    assert classroom.stage == {**classroom.stage, "kind": "compare", "name": "transports"}
    assert all(side["answered"] == 1 for side in recorder.of("compare")[-1]["sides"])


def test_the_lesson_has_ends_and_the_stage_checks_what_it_is_given(room):
    classroom, manager, recorder = room
    with pytest.raises(CommandError, match="this is the first step") as caught:
        classroom.back()
    assert caught.value.status == 409
    with pytest.raises(CommandError, match="this is the last step"):
        classroom.go(4)
    with pytest.raises(CommandError, match="step must be a whole number"):
        classroom.go("2")
    for kind, name, status, words in [
        ("server", "nope", 404, "there is no server named 'nope'"),
        ("compare", "clock", 404, "there is no compare named 'clock'"),
        ("theatre", "x", 400, "kind must be one of server, compare, recording"),
        ("recording", "7", 400, "a recording cannot be put on stage here"),
        ("server", 5, 404, "there is no server named '5'"),
    ]:
        with pytest.raises(CommandError, match=words) as caught:
            classroom.set_stage(kind, name)
        assert caught.value.status == status
    classroom.stageable["recording"] = lambda name: name == "7"  # as the recordings will register
    assert classroom.set_stage("recording", "7")["kind"] == "recording"
    assert classroom.set_stage(None, None) == {**classroom.stage, "kind": None, "name": None}
    assert [s["kind"] for s in recorder.of("stage")] == ["recording", None]
