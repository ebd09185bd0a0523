"""The lesson plan as data: the lecture's own plan, and a copy with mistakes, each refused
with a sentence naming the step and what is wrong."""

import subprocess
import sys

import pytest

from supervisor.core.catalog import build_catalog
from supervisor.core.comparisons import by_name
from supervisor.core.lesson import DEFAULT_LESSON, LessonError, load
from tests.helpers import ROOT, child_env


def load_text(tmp_path, text):
    path = tmp_path / "lesson.toml"
    path.write_text(text)
    return load(str(path), build_catalog(), by_name())


def test_the_lectures_plan_follows_the_lecture():
    lesson = load(DEFAULT_LESSON, build_catalog(), by_name())
    titles = [step.title for step in lesson.steps]
    assert titles[0] == "The clock server and its client"
    assert titles.index("The same over UDP and a Unix socket") == 1
    assert titles.index("handle_request() against serve_forever()") == 2
    assert titles.index("fork.py") == 3
    assert titles.index("The forking server and the looping clients") == 4
    assert titles.index("Ctrl-C and kill_processes()") == 5
    assert titles.index("Zombies and reaping") == 6
    assert titles[-4:] == [
        "Our web server",
        "Exercise 1: swap two strings",
        "Exercise 2: guess the secret number",
        "Exercise 3: guess the word",
    ]
    for step in lesson.steps:
        assert 1 <= len(step.watch) <= 2 and step.stage is not None, step
    forking = lesson.steps[4]
    assert forking.start == (
        ("forking_clock", {"delay": 10.0, "busy": False, "reap": True, "max_children": 100}),
    )
    assert forking.clients == (("forking_clock", 3),) and forking.stage == ("server", "forking_clock")
    assert lesson.steps[1].stage == ("compare", "transports") and lesson.steps[1].run


STEP = '[[step]]\ntitle = "A step"\nwatch = ["one line"]\n'


@pytest.mark.parametrize(
    "text, words",
    [
        ("this is = not toml [", "is not valid TOML"),
        ('title = "no steps"\n', "it has no steps"),
        ('colour = "red"\n' + STEP, "unknown key 'colour'"),
        (STEP + "speed = 3\n", "step 1 (A step): unknown key 'speed'"),
        ('[[step]]\nwatch = ["x"]\n', "step 1: title must be text"),
        ('[[step]]\ntitle = "T"\nwatch = ["a", "b", "c"]\n', "watch must be one or two lines"),
        (STEP + "start = { clok = {} }\n", "there is no server named 'clok'"),
        (
            STEP + "start = { forking_clock = { delay = 500 } }\n",
            "forking_clock: option delay must be between",
        ),
        (STEP + "start = { clock = { busy = true } }\n", "option busy needs work above 0"),
        (STEP + "start = { clock = 3 }\n", "the options of clock must be a table"),
        (
            STEP + "clients = { forking_clock = 3 }\n",
            "clients for forking_clock, which the step does not start",
        ),
        (STEP + "start = { clock = {} }\nclients = { clock = 3 }\n", "talk to the forking clock server"),
        (STEP + "start = { forking_clock = {} }\nclients = { forking_clock = 99 }\n", "from 1 to 20"),
        (STEP + 'stage = "server"\n', 'stage must be "server:NAME" or "compare:NAME"'),
        (STEP + 'stage = "compare:races"\n', "there is no compare named 'races'"),
        (STEP + 'stage = "server:clock"\nrun = true\n', "the stage is no comparison"),
        (
            STEP + '[[step]]\ntitle = "Two"\nwatch = "x"\nrun = "yes"\n',
            "step 2 (Two): run must be true or false",
        ),
        (STEP + "load = { clients = 2 }\n", "goes with run = true"),
        (STEP + 'stage = "compare:cpu"\nrun = true\nload = { clients = 20 }\n', "load clients must be"),
        (STEP + 'stage = "compare:cpu"\nrun = true\nload = { seconds = -1 }\n', "load seconds must be"),
        (
            STEP + 'stage = "compare:transports"\nrun = true\nload = { seconds = 1 }\n',
            "transports takes no seconds",
        ),
    ],
)
def test_a_lesson_with_a_mistake_is_refused_with_where_and_why(tmp_path, text, words):
    with pytest.raises(LessonError, match=None) as caught:
        load_text(tmp_path, text)
    assert words in str(caught.value), str(caught.value)
    assert str(tmp_path / "lesson.toml") in str(caught.value)


def test_a_missing_or_non_utf8_file_says_so(tmp_path):
    with pytest.raises(LessonError, match="does not exist"):
        load(str(tmp_path / "nope.toml"), build_catalog(), by_name())
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'title = "\xff\xfe"\n')
    with pytest.raises(LessonError, match="lesson file .* is not (valid TOML|UTF-8)"):
        load(str(bad), build_catalog(), by_name())


def test_a_step_stages_its_first_server_unless_it_says(tmp_path):
    lesson = load_text(tmp_path, STEP + "start = { web = {}, swap = { timeout = 5 } }\n")
    (step,) = lesson.steps
    assert step.stage == ("server", "web") and [name for name, _ in step.start] == ["web", "swap"]
    assert dict(step.start)["swap"]["timeout"] == 5.0


def test_forkwatch_refuses_a_bad_lesson_file_at_start(tmp_path):
    bad = tmp_path / "mine.toml"
    bad.write_text(STEP + "start = { nope = {} }\n")
    result = subprocess.run(
        [sys.executable, "-m", "supervisor", "--port", "0", "--lesson", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env=child_env(XDG_CONFIG_HOME=str(tmp_path / "config")),
    )
    assert result.returncode == 2, result
    assert f"forkwatch: lesson {bad}: step 1 (A step): there is no server named 'nope'" in result.stderr
