"""The leak check itself: pytest is a child subreaper from the session's start, and a test
that leaves an orphan behind is failed by name (a pytest run of its own, on one test)."""

import ctypes
import json

import psutil

from tests.helpers import ROOT

PR_GET_CHILD_SUBREAPER = 37

LEAKING_TEST = """
import subprocess, sys

from tests.conftest import no_leaked_processes, subreaper  # the fixtures under test

ORPHAN_MAKER = (
    "import json, os, sys, time\\n"
    "pid = os.fork()\\n"
    "if pid == 0:\\n"
    "    null = os.open(os.devnull, os.O_RDWR)\\n"
    "    os.dup2(null, 1)\\n"
    "    os.dup2(null, 2)\\n"
    "    time.sleep(20)\\n"
    "    os._exit(0)\\n"
    "print(json.dumps(pid), flush=True)\\n"  # the middle process exits: its child is an orphan
)


def test_leaves_an_orphan():
    out = subprocess.run([sys.executable, "-c", ORPHAN_MAKER], capture_output=True, check=True)
    print("orphan", out.stdout.decode().strip())
"""


def test_pytest_is_a_child_subreaper_whatever_ran_before():
    flag = ctypes.c_int(0)
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0) == 0
    assert flag.value == 1


def test_an_orphan_left_by_a_test_fails_that_test_by_name(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", ROOT)
    pytester.makepyfile(test_leaky=LEAKING_TEST)
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    output = result.stdout.str()
    orphan = next((json.loads(line.split()[-1]) for line in output.splitlines() if "orphan " in line), None)
    try:
        assert orphan is not None, output
        result.assert_outcomes(passed=1, errors=1)
        assert "test_leaky.py::test_leaves_an_orphan leaked processes" in output
        assert "pid = os.fork()" in output  # with its command line
        assert not psutil.pid_exists(orphan) or psutil.Process(orphan).status() == psutil.STATUS_ZOMBIE
    finally:
        if orphan is not None:
            try:
                proc = psutil.Process(orphan)
                if proc.status() != psutil.STATUS_ZOMBIE and "os.fork()" in " ".join(proc.cmdline()):
                    proc.kill()
            except psutil.Error:
                pass
