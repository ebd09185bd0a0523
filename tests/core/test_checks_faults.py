"""Deliberately wrong solutions: each fails the check of its rule, and the fault is named."""

import pytest

from supervisor.core.checks.runner import check_program, command_for_file
from tests.core.check_support import SOLUTIONS, by_name, solution


def failed(report):
    return {result.name: result.fault for result in report.results if result.passed is False}


def test_a_swap_server_that_answers_each_client_its_own_line():
    report = check_program(
        "swap", solution("swap_own_line.py", "--timeout", "{timeout}"), options={"timeout": 1}
    )
    faults = failed(report)
    assert "a swap server that answers a client its own line" in faults["swap.pair_in_order"]
    assert report.exit_code == 1
    pair = by_name(report)["swap.pair_in_order"]
    sent = [step for step in pair.transcript if step["dir"] == "sent" and step["who"] == "A"]
    got = [step for step in pair.transcript if step["dir"] == "received" and step["who"] == "A"]
    assert sent and got and got[0]["text"] == sent[0]["text"], "the transcript shows A's own line coming back"
    assert "swap.lone_client" not in faults


def test_a_secret_server_with_per_process_state_under_forking():
    report = check_program("secret_number", solution("secret_per_process.py"))
    faults = failed(report)
    assert faults["secret_number.two_connected"] == (
        "secret-number state is per process under forking: two clients both heard `right`"
    )
    assert (
        "per process under forking: 20 of 20 guessers heard `right`" in faults["secret_number.twenty_at_once"]
    )
    assert "secret_number.wrong" not in faults


def test_a_word_server_that_does_not_escape():
    report = check_program("guess_word", solution("word_unescaped.py"))
    faults = failed(report)
    assert list(faults) == ["guess_word.escaped"]
    assert faults["guess_word.escaped"].startswith("the word is echoed unescaped")


def test_a_forking_clock_whose_parent_keeps_its_copy_of_the_client_socket():
    report = check_program("forking_clock", solution("forking_clock_keeps_copy.py"), options={"delay": 0})
    faults = failed(report)
    assert faults["forking_clock.eof"] == (
        "the forking parent never closes its copy of the client socket: the client never sees EOF"
    )
    assert "still holds 1 of 3 sockets of clients that left" in faults["forking_clock.parent_closes"]
    assert "forking_clock.reaped" not in faults
    assert "clock.answer" not in faults


def test_a_clock_that_reads_the_question_with_one_recv():
    report = check_program("clock", solution("clock_one_recv.py"))
    faults = failed(report)
    assert list(faults) == ["clock.pieces"]
    assert "reads once (recv(25))" in faults["clock.pieces"]


def test_a_program_that_crashes_at_start_cannot_be_checked_and_shows_why():
    report = check_program("clock", command_for_file(f"{SOLUTIONS}/crash_at_start.py"))
    assert report.exit_code == 2
    assert report.error.startswith("it exited with code 1 before it listened on port")
    assert report.output[-1] == "NameError: name 'ClockHandlr' is not defined"
    assert report.results == []


def test_a_program_that_never_listens_cannot_be_checked():
    report = check_program("clock", solution("never_listens.py"), start_timeout=0.5)
    assert report.exit_code == 2
    assert "did not listen on port" in report.error and "within 0.5 s" in report.error
    assert report.output == ["the server is ready"]


@pytest.mark.parametrize(
    "exercise, command, words",
    [
        ("clock", ["python3", "x.py"], "must contain {port}"),
        ("clock", ["{python}", "x.py", "--port", "{port}", "{prot}"], "unknown placeholder {prot}"),
        ("swap", ["{python}", "x.py", "--port", "{port}"], None),
        ("juggling", ["{python}", "x.py", "--port", "{port}"], "unknown exercise 'juggling'"),
    ],
)
def test_bad_commands_are_refused_before_anything_starts(exercise, command, words):
    if words is None:
        with pytest.raises(ValueError, match="has no option 'nap'"):
            check_program(exercise, command, options={"nap": 1})
        with pytest.raises(ValueError, match="must be a number"):
            check_program(exercise, command, options={"timeout": "soon"})
        with pytest.raises(ValueError, match="swap has no secret"):
            check_program(exercise, command, secret="42")
        return
    with pytest.raises(ValueError, match=words.replace("{", r"\{").replace("(", r"\(")):
        check_program(exercise, command)


def test_a_given_secret_must_fit_the_game():
    command = ["{python}", "x.py", "--port", "{port}"]
    with pytest.raises(ValueError, match="a whole number from 1 to 100"):
        check_program("secret_number", command, secret="forty-two")
    with pytest.raises(ValueError, match="lowercase letters"):
        check_program("guess_word", command, secret="no/slash")
