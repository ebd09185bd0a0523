"""Ctrl-C the lecture's way (SIGINT to the server process alone, its own shutdown, Stop's
escalation when it is ignored) and exits classified honestly: finished or crash."""

import os
import signal

import pytest

from supervisor.core.process import CommandError
from supervisor.core.states import ExitClass, exit_class
from supervisor.proc.stat import exists
from tests.helpers import ask, connect, misbehaving, start_ready, wait_for, wait_state


def events_of(manager, server):
    return [(e["kind"], e["text"]) for e in manager.events_after(0)["events"] if e["server"] == server]


# --- the one rule ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "returncode, sent, expected",
    [
        (0, set(), ExitClass.FINISHED),
        (0, {signal.SIGINT}, ExitClass.FINISHED),
        (-signal.SIGINT, {signal.SIGINT}, ExitClass.FINISHED),  # it died of the Ctrl-C it was sent
        (-signal.SIGINT, set(), ExitClass.CRASH),  # a SIGINT nobody here sent
        (-signal.SIGKILL, {signal.SIGINT}, ExitClass.CRASH),
        (1, {signal.SIGINT}, ExitClass.CRASH),
        (3, set(), ExitClass.CRASH),
        (None, set(), ExitClass.CRASH),
    ],
)
def test_exit_class_of_a_code_and_the_signals_sent(returncode, sent, expected):
    assert exit_class(returncode, sent) is expected


# --- Ctrl-C ------------------------------------------------------------------------------------


def test_ctrl_c_runs_kill_processes_and_the_server_finishes(manager_factory, request):
    manager, recorder = manager_factory()
    server = start_ready(manager, "forking_clock", {"delay": 60})
    socks = [connect(server) for _ in range(3)]
    request.addfinalizer(lambda: [sock.close() for sock in socks])
    children = wait_for(
        lambda: (
            len(manager.watcher.descendants("forking_clock")) == 3
            and {pid: created for pid, created, _ in manager.watcher.descendants("forking_clock")}
        ),
        what="three children",
    )
    wait_for(  # the server has each one in active_processes (a fork it had not listed would be missed)
        lambda: sum(line.startswith("appending PID ") for line in server.output.tail()) == 3,
        what="three children appended",
    )
    root = server.pid
    manager.interrupt("forking_clock")
    info = wait_state(manager, "forking_clock", "EXITED")
    assert (info["exit_code"], info["exit_class"]) == (0, "finished")
    assert info["reason"] == "closed on Ctrl-C (SIGINT): it ran its own shutdown and exited with code 0"
    assert not any(exists(pid, created) for pid, created in children.items())
    for sock in socks:
        assert sock.recv(10) == b""
    lines = server.output.tail()
    appended = [int(line.split()[-1]) for line in lines if line.startswith("appending PID ")]
    assert sorted(appended) == sorted(children)
    shutdown = lines[lines.index("ctrl c pressed, closing server") :]
    assert [line for line in shutdown if not line.startswith("client is blocked")] == [
        "ctrl c pressed, closing server",
        f"active processes : {appended}",
        *(f"-> killing process {pid}" for pid in appended),
    ]
    told = events_of(manager, "forking_clock")
    assert (
        "interrupt",
        f"Ctrl-C: SIGINT to forking_clock (PID {root}) alone; it runs its own shutdown",
    ) in told
    for pid in children:
        death = (
            "exit",
            f"child {pid} killed by the server's kill_processes() (-> killing process {pid}) and reaped",
        )
        assert death in told
        assert told.index(death) < told.index(("finished", f"forking_clock finished: {info['reason']}"))
    assert recorder.states("forking_clock") == ["STARTING", "RUNNING", "EXITED"]  # never STOPPING


def test_ctrl_c_that_is_ignored_is_escalated_as_stop_does(manager_factory):
    manager, recorder = manager_factory(extra_servers=[misbehaving("ignore-int")], stop_timeout=0.5)
    server = start_ready(manager, "ignore_int")
    wait_for(lambda: "ignoring SIGINT" in server.output.tail(), what="the handler installed")
    manager.interrupt("ignore_int")
    info = wait_state(manager, "ignore_int", "STOPPED")
    assert recorder.states("ignore_int") == ["STARTING", "RUNNING", "STOPPING", "STOPPED"]
    assert recorder.of("server", name="ignore_int", state="STOPPING")[0]["reason"] == (
        "still running 0.5 s after Ctrl-C; stopped"
    )
    assert info["exit_code"] == -signal.SIGTERM and info["exit_class"] is None
    assert (
        "interrupt",
        "ignore_int has not exited 0.5 s after Ctrl-C; forkwatch stops it as Stop does "
        "(SIGTERM to its group, then SIGKILL)",
    ) in events_of(manager, "ignore_int")


def test_a_ctrl_c_the_program_does_not_catch_is_finished_not_a_crash(manager_factory):
    manager, _ = manager_factory(extra_servers=[misbehaving("ignore-term")])
    server = start_ready(manager, "ignore_term")
    wait_for(lambda: "ignoring SIGTERM" in server.output.tail(), what="the program idling")
    manager.interrupt("ignore_term")
    info = wait_state(manager, "ignore_term", "EXITED")
    assert (info["exit_code"], info["exit_class"]) == (-signal.SIGINT, "finished")
    assert info["reason"] == "ended by Ctrl-C (SIGINT), which it did not catch"


def test_ctrl_c_is_refused_clearly_when_it_cannot_be_sent(manager_factory):
    manager, _ = manager_factory(extra_servers=[misbehaving("ignore-int")], stop_timeout=5.0)
    with pytest.raises(CommandError, match="ignore_int is not running \\(stopped\\)"):
        manager.interrupt("ignore_int")
    start_ready(manager, "ignore_int")
    manager.interrupt("ignore_int")
    with pytest.raises(CommandError, match="already got Ctrl-C and is shutting down"):
        manager.interrupt("ignore_int")
    with pytest.raises(CommandError) as err:
        manager.interrupt("no_such_server")
    assert err.value.status == 404
    manager.stop("ignore_int")
    wait_state(manager, "ignore_int", "STOPPED")


def test_stop_at_the_moment_ctrl_c_ends_the_server_never_hangs(manager):
    for _ in range(5):
        start_ready(manager, "clock")
        manager.interrupt("clock")
        try:
            manager.stop("clock")
        except CommandError as exc:
            assert "has just ended by itself" in exc.message or "is not running" in exc.message
        assert manager.servers["clock"].wait_stopped(10)
        assert manager.servers["clock"].state.name in ("EXITED", "STOPPED")


# --- exits the program meant ---------------------------------------------------------------------


def test_once_after_its_request_is_finished_as_handle_request_does(manager_factory):
    manager, _ = manager_factory(autorestart=True)
    server = start_ready(manager, "clock", {"once": True})
    with connect(server) as sock:
        ask(sock)
    info = wait_state(manager, "clock", "EXITED")
    assert (info["exit_code"], info["exit_class"]) == (0, "finished")
    assert info["reason"] == "served one request, as handle_request() does"
    told = events_of(manager, "clock")
    assert ("finished", "clock finished: served one request, as handle_request() does") in told
    assert not any(kind == "crash" for kind, _ in told)
    assert manager.servers["clock"].state.name == "EXITED"  # autorestart restarts crashes only


def test_q_in_fork_demo_is_finished(manager):
    server = start_ready(manager, "fork_demo")
    wait_for(lambda: "press Enter to fork a child, q to quit" in server.output.tail(), what="the prompt")
    manager.send_stdin("fork_demo", "q")
    info = wait_state(manager, "fork_demo", "EXITED")
    assert (info["exit_code"], info["exit_class"], info["reason"]) == (
        0,
        "finished",
        "quit on q, as fork.py does",
    )


def test_a_signal_nobody_sent_is_a_crash(manager_factory):
    manager, _ = manager_factory()
    server = start_ready(manager, "web")
    os.kill(server.pid, signal.SIGKILL)
    info = wait_state(manager, "web", "EXITED")
    assert (info["exit_class"], info["reason"]) == ("crash", "was killed by SIGKILL")
    assert ("crash", "web crashed: was killed by SIGKILL") in events_of(manager, "web")
