"""Stacks of managed processes through the Manager: only managed trees, one py-spy read shared
by everyone asking at once, every refusal with its HTTP status, and the servers' tracer
permission under Yama."""

import os
import threading

import pytest

from supervisor.core.process import CommandError
from supervisor.proc import pystack
from supervisor.proc.pystack import StackReader
from supervisor.proc.stat import read_stat
from tests.helpers import ask, connect, start_ready, wait_for
from tests.proc.test_pystack import PY_SPY_REFUSED, answer_with_frames, fake_py_spy


def forked_child(manager, name="forking_clock"):
    server = manager.servers[name]
    return wait_for(lambda: [pid for pid, _, _ in manager.watcher.descendants(name)], 10, "a child")[
        0
    ], server


def refused(call):
    with pytest.raises(CommandError) as caught:
        call()
    return caught.value.status, caught.value.message


def test_a_child_in_its_delay_is_at_the_sleep_line_with_its_source(manager_factory):
    manager, _ = manager_factory()
    server = start_ready(manager, "forking_clock", {"delay": 30})
    with connect(server):
        pid, _ = forked_child(manager)
        wait_for(lambda: read_stat(pid).state == "S", 10, "the child asleep")
        stack = wait_for(
            lambda: (read := manager.stack(pid))["frames"][0]["function"] == "handle_client" and read,
            10,
            "the child in handle_client",
        )
        top = stack["frames"][0]
        assert (stack["pid"], stack["server"]) == (pid, "forking_clock")
        assert top["code"] == "time.sleep(delay)" and top["source"] == "/source/servers/forking_clock.py"
        runpy = [f for f in stack["frames"] if f["source"] is None]
        assert runpy and all(f["code"] is None for f in runpy)  # only the lecture's lines, for viewers
        assert "locals" not in stack
        values = {v["name"]: v["value"] for v in manager.stack(pid, with_locals=True)["locals"]}
        assert values["delay"] in ("30", "30.0")


def test_only_processes_of_managed_trees(manager_factory, stranger):
    manager, _ = manager_factory()
    assert refused(lambda: manager.stack(stranger.pid)) == (
        403,
        f"PID {stranger.pid} is not a process of any server forkwatch runs",
    )
    assert refused(lambda: manager.stack(1))[0] == 403
    assert refused(lambda: manager.stack(os.getpid()))[0] == 403  # the dashboard itself
    assert refused(lambda: manager.stack(2**22 + 1))[0] == 404
    for bad in (0, -3, "12", True, None):
        assert refused(lambda bad=bad: manager.stack(bad))[0] == 400


def test_a_zombie_has_no_stack(manager_factory):
    manager, _ = manager_factory()
    server = start_ready(manager, "forking_clock", {"delay": 0})
    with connect(server) as sock:
        pid, _ = forked_child(manager)
        assert ask(sock).endswith(b"\n")
    wait_for(lambda: read_stat(pid).state == "Z", 10, "the zombie")
    status, message = refused(lambda: manager.stack(pid))
    assert status == 409 and "zombie" in message


def test_busy_when_two_reads_run(manager_factory):
    manager, _ = manager_factory()
    server = start_ready(manager, "forking_clock", {"delay": 30})
    slots = manager.stacks.reader._slots
    for _ in range(manager.stacks.reader.max_reads):  # two reads under way elsewhere
        assert slots.acquire(blocking=False)
    try:
        status, message = refused(lambda: manager.stack(server.pid))
        assert status == 429 and "2 stack reads are already running" in message
    finally:
        for _ in range(manager.stacks.reader.max_reads):
            slots.release()
    assert manager.stack(server.pid)["pid"] == server.pid  # a busy refusal is not kept


def test_askers_at_the_same_time_share_one_read(manager_factory, tmp_path):
    manager, _ = manager_factory()
    server = start_ready(manager, "clock")
    answer, _ = answer_with_frames(str(tmp_path))
    counting = (
        f"open(os.path.join({str(tmp_path)!r}, 'read-' + str(os.getpid())), 'w').close()\ntime.sleep(0.3)\n"
    )
    manager.stacks.reader = StackReader(py_spy=fake_py_spy(str(tmp_path), counting + answer))
    answers = []
    askers = [threading.Thread(target=lambda: answers.append(manager.stack(server.pid))) for _ in range(8)]
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join(10)
    assert len(answers) == 8 and all(a == answers[0] for a in answers)
    assert len(list(tmp_path.glob("read-*"))) == 1  # one py-spy for eight askers
    frame = answers[0]["frames"][0]
    assert frame["function"] == "handle_client" and frame["code"] is None  # not a lecture file
    assert manager.stack(server.pid, every_line=True)["frames"][0]["code"] == "time.sleep(delay)"


@pytest.mark.parametrize(
    "kind, py_spy, status",
    [
        ("missing", None, 503),
        ("failed", "sys.stderr.write('Error: something broke\\n')\nsys.exit(1)\n", 502),
        ("denied", f"sys.stderr.write({PY_SPY_REFUSED!r} + '\\n')\nsys.exit(1)\n", 403),
        ("timeout", "time.sleep(30)\n", 504),
    ],
)
def test_each_refusal_has_its_status(manager_factory, tmp_path, kind, py_spy, status):
    manager, _ = manager_factory()
    server = start_ready(manager, "clock")
    path = fake_py_spy(str(tmp_path), py_spy) if py_spy else str(tmp_path / "no-py-spy")
    manager.stacks.reader = StackReader(py_spy=path, timeout=0.5)
    code, message = refused(lambda: manager.stack(server.pid))
    assert code == status, message
    assert {
        "missing": "not installed",
        "failed": "something broke",
        "denied": "no permission",
        "timeout": "0.5 s",
    }[kind] in message


@pytest.mark.parametrize("scope", [1, 0])
def test_under_yama_scope_one_a_server_names_the_dashboard_as_its_tracer(manager_factory, monkeypatch, scope):
    monkeypatch.setattr(pystack, "yama_scope", lambda path=pystack.YAMA_SCOPE: scope)  # the kernel's setting
    manager, _ = manager_factory()
    server = start_ready(manager, "forking_clock", {"delay": 30})
    with open(f"/proc/{server.pid}/environ", "rb") as handle:
        environment = dict(item.split(b"=", 1) for item in handle.read().split(b"\0") if b"=" in item)
    if scope == 1:
        assert environment[b"FORKWATCH_PTRACER"] == str(os.getpid()).encode()
    else:
        assert b"FORKWATCH_PTRACER" not in environment
    with connect(server):
        pid, _ = forked_child(manager)
        assert manager.stack(pid)["frames"]
