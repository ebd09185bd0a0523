"""The lecture's own servers pass every check of their exercise, through the same runner
a student's program goes through."""

import pytest

from supervisor.core.checks import EXERCISES
from supervisor.core.checks.runner import check_program
from tests.core.check_support import lecture


@pytest.mark.parametrize(
    "exercise, command, options",
    [
        ("swap", lecture("swap", "--timeout", "{timeout}"), {"timeout": "1"}),
        ("secret_number", lecture("secret_number"), {}),
        ("secret_number", lecture("secret_number", "--forking"), {}),
        ("guess_word", lecture("guess_word"), {}),
        ("clock", lecture("clock"), {}),
        ("clock", lecture("clock", "--threading"), {}),
        ("forking_clock", lecture("forking_clock", "--delay", "{delay}", "--reap"), {"delay": "0"}),
    ],
    ids=[
        "swap",
        "secret_number",
        "secret_number-forking",
        "guess_word",
        "clock",
        "clock-threading",
        "forking_clock",
    ],
)
def test_the_lecture_server_passes_every_check(exercise, command, options):
    report = check_program(exercise, command, options=options)
    failed = [(result.name, result.fault) for result in report.results if not result.passed]
    assert report.error is None, report.output
    assert failed == []
    assert [result.name for result in report.results] == [check.name for check in EXERCISES[exercise].checks]
    assert report.exit_code == 0
    assert all(result.transcript for result in report.results), "every check talks to the server"
    if "--forking" in command:
        assert report.peak_processes > 2, "twenty guessers at once are served by forked children"


def test_the_lecture_forking_clock_without_reap_leaves_zombies_and_is_told_so():
    report = check_program(
        "forking_clock", lecture("forking_clock", "--delay", "{delay}"), options={"delay": 0}
    )
    failed = {result.name: result.fault for result in report.results if not result.passed}
    assert list(failed) == ["forking_clock.reaped"]
    assert "exited children stay zombies" in failed["forking_clock.reaped"]
    assert report.exit_code == 1
