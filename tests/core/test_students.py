"""The students' servers in the catalogue: from `--serve FILE` and from the config's tables
with a `command`, each a ServerSpec marked as student code; every mistake refused in a
sentence that names it, before anything starts."""

import os
import subprocess
import sys

import pytest

from supervisor.cli import parse_args
from supervisor.core import config, students
from supervisor.core.catalog import LECTURE_PIDS_MAX
from tests.core.check_support import SOLUTIONS
from tests.helpers import ROOT, child_env

SWAP = os.path.join(SOLUTIONS, "swap_own_line.py")
SECRET = os.path.join(SOLUTIONS, "secret_per_process.py")


def catalog(serve=(), servers=None, folder=None):
    return students.catalog({"serve": list(serve), "servers": servers or {}, "config_folder": folder})


def test_serve_adds_a_student_server_with_its_exercise_client_and_secret():
    found = catalog([{"file": SECRET, "exercise": "secret_number", "name": "team3"}])
    spec = found["team3"]
    assert spec.student and spec.exercise == "secret_number"
    assert spec.command == (sys.executable, SECRET, "--port", "{port}")
    assert (spec.protocol, spec.client) == ("tcp", "number")
    assert spec.secret == found["secret_number"].secret, "the game's secret, as the lecture's server has it"
    assert spec.limits.processes == spec.pids_max == students.PROCESSES
    assert spec.limits.memory_bytes == students.MEMORY_MB << 20
    assert spec.limits.cpu_seconds == students.CPU_SECONDS
    described = spec.describe()
    assert described["student"] is True and described["command"][-1] == "{port}"
    lecture = found["secret_number"]
    assert (
        not lecture.student and lecture.exercise == "secret_number" and lecture.pids_max == LECTURE_PIDS_MAX
    )


def test_serve_names_it_after_its_file_and_takes_the_checks_options():
    spec = catalog([{"file": SWAP, "exercise": "swap", "options": {"timeout": "2"}}])["swap_own_line"]
    assert spec.check_options == (("timeout", 2.0),)
    assert spec.client == "swap"
    plain = catalog([{"file": SWAP}])["swap_own_line"]
    assert plain.exercise is None and plain.client is None and plain.secret is None


def test_a_config_table_with_a_command_is_a_student_server(tmp_path):
    (tmp_path / "team3").mkdir()
    (tmp_path / "team3" / "swap.py").write_text("print('hi')\n")
    path = tmp_path / "forkwatch.toml"
    path.write_text(
        "[servers.clock]\nport = 13091\n\n"
        "[servers.team3]\n"
        'command = ["{python}", "team3/swap.py", "--port", "{port}", "--timeout", "{timeout}"]\n'
        'exercise = "swap"\ntitle = "Team 3"\noptions = { timeout = 3 }\n'
        "max_processes = 20\nmemory_mb = 512\ncpu_seconds = 60\n"
    )
    settings = config.load(str(path), {"state_dir": str(tmp_path / "state")}, environ={})
    found = students.catalog(settings)
    spec = found["team3"]
    assert spec.title == "Team 3" and spec.exercise == "swap"
    assert spec.command[1] == str(tmp_path / "team3" / "swap.py"), "a file beside the config, made absolute"
    assert spec.command[-1] == "{timeout}" and spec.check_options == (("timeout", 3.0),)
    assert (spec.limits.processes, spec.limits.memory_bytes, spec.limits.cpu_seconds) == (20, 512 << 20, 60)
    assert spec.pids_max == 20
    assert found["clock"].port == 13091 and not found["clock"].student


@pytest.mark.parametrize(
    "serve, servers, words",
    [
        ([{"file": "/nowhere/team3.py"}], None, "--serve /nowhere/team3.py: no such file"),
        ([{"file": SWAP, "exercise": "juggling"}], None, "unknown exercise 'juggling'"),
        ([{"file": SWAP}, {"file": SWAP}], None, "two servers are named swap_own_line"),
        ([{"file": SWAP, "name": "clock"}], None, "clock is one of the lecture's servers"),
        ([{"file": SWAP, "name": "team 3"}], None, "the name 'team 3' must be letters, digits"),
        ([{"file": SWAP, "options": {"timeout": "3"}}], None, "it has no exercise"),
        ([{"file": SWAP, "exercise": "swap", "options": {"nap": "3"}}], None, "swap has no option 'nap'"),
        ([{"file": SWAP, "exercise": "swap", "options": {"timeout": "soon"}}], None, "must be a number"),
        (
            [{"file": SWAP, "name": "team3"}],
            {"team3": {"command": ["{python}", SWAP, "--port", "{port}"]}},
            "two servers are named team3 (servers.team3 in the config and --serve",
        ),
        ([], {"clock": {"command": ["{python}", SWAP, "--port", "{port}"]}}, "clock is one of the lecture's"),
        (
            [],
            {"team3": {"command": ["{python}", SWAP, "--port", "12345"]}},
            "the command must contain {port}",
        ),
        (
            [],
            {"team3": {"command": ["{python}", SWAP, "-p", "{port}", "{prot}"]}},
            "unknown placeholder {prot}",
        ),
        ([], {"team3": {"command": "python3 team3.py {port}"}}, "command must be a list of words"),
        (
            [],
            {"team3": {"command": ["no-such-program-here", "{port}"]}},
            "no-such-program-here is not a program",
        ),
        ([], {"team3": {"command": ["{python}", "{port}"], "nice": 5}}, "unknown setting 'nice'"),
        ([], {"team3": {"command": ["{python}", "{port}"], "max_processes": 0}}, "max_processes must be"),
        ([], {"team3": {"command": ["{python}", "{port}"], "exercise": 3}}, "exercise must be text"),
        ([], {"team3": {"port": 3}}, "unknown server 'team3'; a student's server needs command"),
    ],
)
def test_bad_students_servers_are_refused_with_a_sentence(serve, servers, words):
    with pytest.raises(ValueError) as refused:
        catalog(serve, servers)
    assert words in str(refused.value)


def test_the_command_line_groups_as_name_and_opt_with_the_serve_before_them():
    args = parse_args(
        ["--serve", "a.py", "--as", "swap", "--opt", "timeout=3", "--serve", "b.py", "--name", "team3"]
    )
    assert args.serve == [
        {"file": "a.py", "exercise": "swap", "options": {"timeout": "3"}},
        {"file": "b.py", "name": "team3"},
    ]


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--as", "swap", "--serve", "a.py"], "--as belongs after the --serve FILE it is about"),
        (["--serve", "a.py", "--name", "x", "--name", "y"], "--name is given twice for --serve a.py"),
        (["--serve", "a.py", "--opt", "timeout"], "--opt takes NAME=SECONDS"),
    ],
)
def test_the_command_line_refuses_a_misplaced_flag(argv, words, capsys):
    with pytest.raises(SystemExit) as stopped:
        parse_args(argv)
    assert stopped.value.code == 2
    assert words in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--serve", "/nowhere/team3.py"], "forkwatch: --serve /nowhere/team3.py: no such file"),
        (["--serve", SWAP, "--as", "juggling"], f"forkwatch: --serve {SWAP}: unknown exercise 'juggling'"),
    ],
)
def test_forkwatch_refuses_a_bad_serve_before_it_starts_anything(argv, words, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "supervisor", "--port", "0", *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=child_env(XDG_CONFIG_HOME=str(tmp_path)),
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert words in done.stderr
    assert "instructor:" not in done.stdout
