"""Python stacks read from outside with py-spy: a real forked child in its delay, the
two-at-a-time bound, timeouts and refusals; and the servers' opt-in to being traced."""

import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading

import pytest

from servers import forking_clock
from supervisor.proc import pystack
from supervisor.proc.pystack import StackError, StackReader
from supervisor.proc.stat import read_stat
from tests.helpers import ROOT, child_env, wait_for
from tests.proc.blockers import blocked_in

SLEEPER = "import time\ntime.sleep(30)\n"


def delay_sleep_site(path):
    """(function, line) of the `sleep(...delay...)` call in a lecture program's source."""
    with open(path) as handle:
        tree = ast.parse(handle.read())
    sites = []
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef):
            for node in ast.walk(function):
                callee = getattr(node, "func", None)
                if getattr(callee, "attr", getattr(callee, "id", None)) == "sleep" and "delay" in ast.unparse(
                    node
                ):
                    sites.append((function.lineno, function.name, node.lineno))
    assert sites, f"no sleep(delay) in {path}"
    _, name, line = max(sites)  # the innermost function holding the call
    return name, line


def test_a_forking_clock_child_in_its_delay_is_at_the_sleep_line(run_server, reader):
    """Started as forkwatch starts servers under Yama (naming their tracer), the child's
    stack shows the function that sleeps its delay, on that line, with its locals."""
    server = run_server(
        "forking_clock", "--port", "0", "--delay", "30", env={"FORKWATCH_PTRACER": str(os.getpid())}
    )
    with server.connect():
        child = wait_for(server.descendants, 10, "the forked child")[0]
        blocked_in(reader, child.pid, "clock_nanosleep", "nanosleep")
        stack = StackReader().read(child.pid)
        function, line = delay_sleep_site(forking_clock.__file__)
        top = stack.frames[0]
        assert (top.function, top.line) == (function, line)
        assert os.path.samefile(top.file, forking_clock.__file__)
        assert "sleep(" in top.code
        assert stack.frames[-1].function == "_run_module_as_main"
        assert stack.locals is None
        assert stack.as_dict()["frames"][0] == {
            "file": top.file,
            "line": line,
            "function": function,
            "code": top.code,
        }
        with_locals = StackReader().read(child.pid, with_locals=True)
        values = {local.name: local.value for local in with_locals.locals}
        assert values.get("delay") in ("30", "30.0")
        assert "locals" in with_locals.as_dict()


def fake_py_spy(folder, body):
    """An executable standing in for py-spy: runs `body` (Python) with the pid in `pid`."""
    path = os.path.join(folder, "py-spy")
    with open(path, "w") as handle:
        handle.write(
            f"#!{sys.executable}\nimport json, os, sys, time\npid = int(sys.argv[sys.argv.index('--pid') + 1])\n"
        )
        handle.write(body)
    os.chmod(path, 0o755)
    return path


def answer_with_frames(folder):
    """py-spy's JSON for one frame of a real source file (so its code line can be read)."""
    source = os.path.join(folder, "lesson.py")
    with open(source, "w") as handle:
        handle.write("import time\n\n\ndef handle_client(delay):\n    time.sleep(delay)\n")
    frames = [
        {
            "name": "handle_client",
            "filename": source,
            "line": 5,
            "locals": [{"name": "delay", "repr": "10", "arg": True}],
        }
    ]
    return f"print(json.dumps([{{'pid': pid, 'os_thread_id': pid, 'frames': {frames!r}}}]))\n", source


def test_a_third_read_is_refused_while_two_run(tmp_path):
    answer, source = answer_with_frames(str(tmp_path))
    release = tmp_path / "release"
    waiting = (
        f"open(os.path.join({str(tmp_path)!r}, 'started-' + str(os.getpid())), 'w').close()\n"
        f"deadline = time.monotonic() + 30\n"
        f"while not os.path.exists({str(release)!r}) and time.monotonic() < deadline:\n"
        f"    time.sleep(0.01)\n"
    )
    reader = StackReader(py_spy=fake_py_spy(str(tmp_path), waiting + answer))
    results = []
    readers = [threading.Thread(target=lambda: results.append(reader.read(os.getpid()))) for _ in range(2)]
    for thread in readers:
        thread.start()
    try:
        wait_for(lambda: len(list(tmp_path.glob("started-*"))) == 2, 10, "two reads to be running")
        with pytest.raises(StackError) as refused:
            reader.read(os.getpid())
        assert refused.value.kind == pystack.BUSY
        assert "2 stack reads are already running" in refused.value.message
    finally:
        release.touch()
        for thread in readers:
            thread.join(30)
    assert len(results) == 2
    frame = results[0].frames[0]
    assert (frame.file, frame.line, frame.function, frame.code) == (
        source,
        5,
        "handle_client",
        "time.sleep(delay)",
    )
    assert reader.read(os.getpid(), with_locals=True).locals[0].value == "10"  # a slot is free again


def test_a_read_that_hangs_times_out(tmp_path):
    reader = StackReader(py_spy=fake_py_spy(str(tmp_path), "time.sleep(60)\n"), timeout=0.5)
    with pytest.raises(StackError) as failed:
        reader.read(os.getpid())
    assert failed.value.kind == pystack.TIMEOUT
    assert failed.value.message == "py-spy did not answer within 0.5 s"


PY_SPY_REFUSED = (
    "Permission Denied: Try running again with elevated permissions by going 'sudo env \"PATH=$PATH\" !!'"
)


def test_refused_under_yama_says_why_and_what_helps(tmp_path):
    """What py-spy prints when ptrace is refused, on a machine whose Yama ptrace_scope is 1."""
    refusing = f"sys.stderr.write({PY_SPY_REFUSED!r} + '\\n')\nsys.exit(1)\n"
    scope = tmp_path / "ptrace_scope"
    scope.write_text("1\n")
    reader = StackReader(py_spy=fake_py_spy(str(tmp_path), refusing), yama_path=str(scope))
    with pytest.raises(StackError) as refused:
        reader.read(os.getpid())
    assert refused.value.kind == pystack.DENIED
    assert refused.value.message.startswith(f"no permission to attach to process {os.getpid()} (ptrace)")
    assert "ptrace_scope is 1" in refused.value.message and "FORKWATCH_PTRACER" in refused.value.message
    assert pystack.tracer_environment(scope=1) == {"FORKWATCH_PTRACER": str(os.getpid())}
    assert pystack.tracer_environment(scope=0) == {} and pystack.tracer_environment(scope=2) == {}


UNPRIVILEGED_STACK = """
import json, os, sys
from supervisor.proc.pystack import StackError, StackReader
from tests.proc.blockers import as_nobody
if os.geteuid() == 0:
    as_nobody()
try:
    StackReader(py_spy=sys.argv[1]).read(int(sys.argv[2]))
    print(json.dumps({"uid": os.geteuid(), "kind": None}))
except StackError as exc:
    print(json.dumps({"uid": os.geteuid(), "kind": exc.kind, "message": exc.message}))
"""


def test_refused_for_real_without_ptrace_permission(blockers):
    """Real py-spy, run as `nobody` against a root process (or, when the tests do not run as
    root, against PID 1): the kernel refuses the attach."""
    target = blockers.start(SLEEPER).pid if os.geteuid() == 0 else 1
    folder = tempfile.mkdtemp(prefix="forkwatch-py-spy-")
    try:
        os.chmod(folder, 0o755)  # reachable by nobody
        py_spy = shutil.copy(pystack.find_py_spy(), folder)
        done = subprocess.run(
            [sys.executable, "-c", UNPRIVILEGED_STACK, py_spy, str(target)],
            capture_output=True,
            env=child_env(),
            cwd=ROOT,
            timeout=30,
        )
    finally:
        shutil.rmtree(folder)
    assert done.returncode == 0, done.stderr.decode()
    seen = json.loads(done.stdout)
    assert seen["uid"] != 0
    assert seen["kind"] == pystack.DENIED, seen
    assert seen["message"].startswith(f"no permission to attach to process {target} (ptrace)")


def test_gone_zombie_missing_and_not_python(blockers):
    reader = StackReader()
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        wait_for(lambda: read_stat(proc.pid).state == "Z", 10, "the zombie")
        with pytest.raises(StackError) as zombie:
            reader.read(proc.pid)
        assert zombie.value.kind == pystack.ZOMBIE
    finally:
        proc.wait()
    with pytest.raises(StackError) as gone:
        reader.read(proc.pid)
    assert (gone.value.kind, gone.value.message) == (pystack.GONE, f"process {proc.pid} is gone")
    with pytest.raises(StackError) as missing:
        StackReader(py_spy="/nonexistent/py-spy").read(os.getpid())
    assert missing.value.kind == pystack.MISSING
    shell = blockers.start("import os\nos.execvp('sleep', ['sleep', '30'])\n")
    wait_for(lambda: read_stat(shell.pid).name == "sleep", 10, "the exec")
    with pytest.raises(StackError) as not_python:
        reader.read(shell.pid)
    assert not_python.value.kind == pystack.FAILED
    assert "Failed to find python version" in not_python.value.message


AUDITED_FORK = """
import os, sys
def note_prctl(event, args):
    if event == "ctypes.dlsym" and args[1] == "prctl":
        os.write(1, f"prctl in {os.getpid()}\\n".encode())
sys.addaudithook(note_prctl)
from servers import common
child = os.fork()
if child == 0:
    os._exit(0)
os.waitpid(child, 0)
print(f"parent {os.getpid()} child {child} permitted {common.permit_tracer()}", flush=True)
"""


def _audited(**env):
    base = child_env()
    base.pop("FORKWATCH_PTRACER", None)
    done = subprocess.run(
        [sys.executable, "-c", AUDITED_FORK], capture_output=True, env={**base, **env}, cwd=ROOT, timeout=30
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode().splitlines()


def test_a_server_names_its_tracer_at_start_and_in_each_child_only_when_asked():
    *calls, summary = _audited(FORKWATCH_PTRACER="any")
    _, parent, _, child, _, permitted = summary.split()
    # at start, in the forked child, and the explicit call: the kernel's answer is True
    # under Yama and False (EINVAL) on a kernel without it
    assert calls == [f"prctl in {parent}", f"prctl in {child}", f"prctl in {parent}"]
    assert permitted == str(os.path.exists("/proc/sys/kernel/yama"))
    *calls, summary = _audited()
    assert calls == [] and summary.endswith("permitted None")  # a plain run is left alone


def test_the_tracer_variable_is_read_strictly():
    from servers.common import PR_SET_PTRACER_ANY, tracer_from

    assert tracer_from("4242") == 4242
    assert tracer_from(" any ") == PR_SET_PTRACER_ANY
    for bad in (None, "", "0", "-1", "12x", "٣", "everyone"):
        assert tracer_from(bad) is None, bad
