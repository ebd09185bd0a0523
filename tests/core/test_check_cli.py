"""`forkwatch check` as a student runs it: a real subprocess, no dashboard; exit code 0 when
every check passed, 1 when one failed, 2 when the program could not be checked."""

import json
import os
import re
import subprocess
import sys

import pytest

from tests.core.check_support import SOLUTIONS
from tests.helpers import ROOT, child_env

LECTURE_CLOCK = "{python} -m servers.clock --port {port}"


def forkwatch_check(*args, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "supervisor", "check", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=child_env(),
        timeout=timeout,
    )


def test_all_checks_pass_exit_0_with_a_line_per_check():
    done = forkwatch_check("--as", "clock", "--command", LECTURE_CLOCK)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].startswith("PASS  clock.answer: ")
    assert lines[2].startswith("PASS  clock.pieces: ")
    assert lines[-1].startswith("2 passed, 0 failed")


def test_a_failed_check_exits_1_and_prints_its_fault_and_transcript():
    done = forkwatch_check(os.path.join(SOLUTIONS, "clock_one_recv.py"), "--as", "clock")
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "FAIL  clock.pieces" in out
    assert "fault: it answered before the whole 25-byte question arrived" in out
    assert "A    sent      'What is '" in out, "the transcript shows the first piece"
    assert re.search(r"A    received  '(Mon|Tue|Wed|Thu|Fri|Sat|Sun) ", out), "and the early answer"
    assert out.splitlines()[-1].startswith("1 passed, 1 failed")


def test_json_report_for_machines():
    done = forkwatch_check(os.path.join(SOLUTIONS, "word_unescaped.py"), "--as", "guess_word", "--json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is False and report["exit_code"] == 1 and report["error"] is None
    checks = {check["name"]: check for check in report["checks"]}
    assert checks["guess_word.escaped"]["passed"] is False
    assert checks["guess_word.escaped"]["fault"].startswith("the word is echoed unescaped")
    assert checks["guess_word.wrong_is_404"]["passed"] is True
    step = checks["guess_word.escaped"]["transcript"][0]
    assert set(step) == {"ms", "who", "dir", "bytes", "text"}
    assert report["limits"]["memory_bytes"] == 2 << 30


def test_a_program_that_crashes_at_start_exits_2_with_its_last_lines():
    done = forkwatch_check(os.path.join(SOLUTIONS, "crash_at_start.py"), "--as", "clock")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "could not run: it exited with code 1 before it listened on port" in done.stdout
    assert "  starting the clock server" in done.stdout
    assert done.stdout.rstrip().endswith("NameError: name 'ClockHandlr' is not defined")


def test_a_program_that_never_listens_exits_2():
    done = forkwatch_check(
        os.path.join(SOLUTIONS, "never_listens.py"), "--as", "clock", "--start-timeout", "0.5", "--json"
    )
    assert done.returncode == 2
    report = json.loads(done.stdout)
    assert "did not listen on port" in report["error"]
    assert report["output"] == ["the server is ready"]


@pytest.mark.parametrize(
    "args, words",
    [
        (["no-such-solution.py", "--as", "swap"], "no such file: no-such-solution.py"),
        (["--as", "swap"], "give the program's FILE, or how to run it with --command"),
        (["--as", "clock", "--command", "python3 x.py"], "the command must contain {port}"),
        (["--as", "clock", "--command", "python3 'x.py --port {port}"], "No closing quotation"),
        (["--as", "swap", "--command", LECTURE_CLOCK, "--opt", "timeout"], "--opt takes NAME=SECONDS"),
        (["--as", "swap", "--command", LECTURE_CLOCK, "--opt", "timeout=-1"], "between 0 and 3600"),
        (["--as", "clock", "--command", LECTURE_CLOCK, "--user", "no-such-user-here"], "no such user"),
    ],
)
def test_what_cannot_be_run_exits_2_with_a_sentence(args, words):
    done = forkwatch_check(*args)
    assert done.returncode == 2
    assert words in done.stderr
    assert done.stdout == ""


def test_an_unknown_exercise_is_refused_by_the_parser():
    done = forkwatch_check("x.py", "--as", "juggling")
    assert done.returncode == 2
    assert "invalid choice: 'juggling'" in done.stderr
