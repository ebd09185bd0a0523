"""Two students' servers side by side under the same load, with the lecture hall's
comparison run: real clients in each server's own protocol, one side after the other, and
what differs measured — the zombies one leaves, the children each had, the errors."""

import os

import pytest

from supervisor.core.comparison_run import Comparisons
from supervisor.core.comparisons import STUDENTS, students_comparison
from supervisor.core.process import CommandError
from supervisor.core.students import catalog
from tests.core.check_support import SOLUTIONS
from tests.helpers import wait_state

ZOMBIES = os.path.join(SOLUTIONS, "forking_clock_zombies.py")
KEEPS = os.path.join(SOLUTIONS, "forking_clock_keeps_copy.py")
WORD = os.path.join(SOLUTIONS, "word_unescaped.py")
SECRET = os.path.join(SOLUTIONS, "secret_per_process.py")
CLIENTS = 3


def serve(file, exercise, name):
    return {"file": file, "exercise": exercise, "name": name}


def run(manager, servers, clients=CLIENTS):
    comparisons = Comparisons(manager)
    assert STUDENTS in comparisons.known, "two students' servers of one exercise: the comparison is offered"
    comparisons.start(STUDENTS, clients=clients, servers=servers)
    assert comparisons.wait(60), "the comparison did not end"
    result = comparisons.last_run()
    assert result["state"] == "done", result["error"]
    return result, {side["key"]: side for side in result["sides"]}


def test_a_server_that_never_reaps_leaves_a_zombie_per_client_and_the_other_none(manager_factory):
    manager, recorder = manager_factory(
        serve=[serve(ZOMBIES, "forking_clock", "zombies"), serve(KEEPS, "forking_clock", "reaps")]
    )
    result, sides = run(manager, ["zombies", "reaps"])
    assert result["title"] == "zombies against reaps" and [s["key"] for s in result["sides"]] == [
        "zombies",
        "reaps",
    ]
    for side in sides.values():
        assert side["answered"] == CLIENTS and side["errors"] == 0, side["clients"]
        assert side["peak_processes"] >= 2, "each client got a child"
        assert side["total"] is not None
    assert sides["zombies"]["zombies"] == CLIENTS
    assert sides["reaps"]["zombies"] == 0
    for name in sides:  # the run stops what it started
        wait_state(manager, name, "STOPPED")
    said = [p["text"] for p in recorder.of("event", kind="compare")]
    assert any(text.startswith("comparison zombies against reaps (3 clients): zombies ") for text in said), (
        said
    )


def test_each_exercise_is_spoken_to_in_its_own_protocol(manager_factory):
    manager, _ = manager_factory(
        serve=[
            serve(WORD, "guess_word", "word_a"),
            serve(WORD, "guess_word", "word_b"),
            serve(SECRET, "secret_number", "secret_a"),
            serve(SECRET, "secret_number", "secret_b"),
        ]
    )
    _, words = run(manager, ["word_a", "word_b"], clients=2)
    for side in words.values():
        assert side["answered"] == 2, side["clients"]
        assert side["clients"][0]["answer"].startswith("HTTP/1.0 404"), side["clients"][0]
    _, guesses = run(manager, ["secret_b", "secret_a"], clients=2)
    for side in guesses.values():
        assert side["answered"] == 2 and {c["answer"] for c in side["clients"]} <= {"wrong", "right"}


@pytest.mark.parametrize(
    "servers, status, words",
    [
        (["zombies", "zombies"], 400, "zombies against itself compares nothing"),
        (["zombies", "clock"], 400, "clock is one of the lecture's servers"),
        (["zombies", "word"], 400, "zombies solves forking_clock and word guess_word: the same load"),
        (["zombies", "nobody"], 404, "there is no server named 'nobody'"),
        (["zombies"], 400, "servers must be the names of two students' servers"),
    ],
)
def test_two_servers_that_cannot_be_compared_are_refused(manager_factory, servers, status, words):
    manager, _ = manager_factory(
        serve=[
            serve(ZOMBIES, "forking_clock", "zombies"),
            serve(KEEPS, "forking_clock", "reaps"),
            serve(WORD, "guess_word", "word"),
        ]
    )
    with pytest.raises(CommandError) as refused:
        Comparisons(manager).start(STUDENTS, servers=servers)
    assert refused.value.status == status and words in refused.value.message, refused.value.message


def test_the_comparison_is_offered_only_for_two_servers_of_one_exercise():
    lonely = catalog({"serve": [serve(ZOMBIES, "forking_clock", "a"), serve(WORD, "guess_word", "b")]})
    assert students_comparison(lonely) is None
    found = students_comparison(
        catalog(
            {
                "serve": [
                    serve(WORD, "guess_word", "b"),
                    serve(ZOMBIES, "forking_clock", "a"),
                    serve(KEEPS, "forking_clock", "c"),
                ]
            }
        )
    )
    assert [side.server for side in found.sides] == ["a", "c"]
    assert [choice[0] for choice in found.choices] == ["b", "a", "c"]
