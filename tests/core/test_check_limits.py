"""Limits on a student's program: a fork bomb stops at the process cap, a memory hog at the
address-space cap, and nothing of either is left running.

The kernel never applies RLIMIT_NPROC to root, so as root the program runs as `nobody`
(`forkwatch check --user nobody`); as any other user it runs as that user."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import psutil
import pytest

from supervisor.proc import limits
from tests.core.check_support import SOLUTIONS
from tests.helpers import ROOT, child_env, wait_for

CAP = 30


def runs_as_nobody(python):
    """True when `nobody` can run this interpreter (through our own limits wrapper)."""
    wrapped = [sys.executable, "-I", "-S", limits.__file__, "--user", "nobody", "--", python, "-c", "pass"]
    return subprocess.run(wrapped, capture_output=True, timeout=30).returncode == 0


@pytest.fixture
def bomb_command():
    """(the bomb's file, the extra arguments that run it as an unprivileged user)."""
    folder = tempfile.mkdtemp(prefix="forkwatch-bomb-")
    os.chmod(folder, 0o755)  # readable by the user it runs as
    path = shutil.copy(os.path.join(SOLUTIONS, "fork_bomb.py"), folder)
    os.chmod(path, 0o644)
    if os.getuid() != 0:
        yield path, ["--command", "{python} {file} --port {port}"]
    else:
        python = next((p for p in (sys.executable, "/usr/bin/python3") if runs_as_nobody(p)), None)
        assert python, "the fork-bomb test needs a Python that the user nobody can run"
        yield path, ["--user", "nobody", "--command", f"{python} {{file}} --port {{port}}"]
    shutil.rmtree(folder)


def bomb_processes(path):
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if path in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc.pid)
    return found


def test_a_fork_bomb_stops_at_the_process_cap_and_nothing_is_left(bomb_command):
    path, run_as = bomb_command
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "supervisor",
            "check",
            path,
            "--as",
            "clock",
            "--max-processes",
            str(CAP),
            "--json",
        ]
        + run_as,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=child_env(),
        timeout=60,
    )
    report = json.loads(done.stdout)
    assert report["error"] is None, (report["error"], report["output"], done.stderr)
    assert report["exit_code"] == 0, "the server kept answering while its bomb was held at the cap"
    assert CAP // 2 <= report["peak_processes"] <= CAP, report["peak_processes"]
    wait_for(lambda: not bomb_processes(path), 5.0, "every process of the bomb to be gone")


def test_a_memory_hog_stops_at_the_memory_cap():
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "supervisor",
            "check",
            os.path.join(SOLUTIONS, "memory_hog.py"),
            "--as",
            "clock",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=child_env(),
        timeout=60,
    )
    assert done.returncode == 2
    assert "could not run: it exited with code 1 before it listened" in done.stdout
    assert done.stdout.rstrip().endswith("MemoryError")
    assert "never printed" not in done.stdout


def test_the_process_cap_starts_from_what_the_user_runs_already():
    user, uid = ("nobody", 65534) if os.getuid() == 0 else (None, os.getuid())
    before = limits.user_tasks(uid)
    values = limits.rlimits(limits.Limits(processes=7, user=user))
    after = limits.user_tasks(uid)
    assert min(before, after) + 7 <= values["NPROC"] <= max(before, after) + 7
    assert values["AS"] == 2 << 30 and values["CPU"] == 30 and values["CORE"] == 0


def test_root_gets_no_process_cap_it_would_ignore():
    values = limits.rlimits(limits.Limits())
    assert ("NPROC" in values) == (os.getuid() != 0)
