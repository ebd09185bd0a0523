"""The Manager's commands: refusals, kill_processes(), signals by identity only, restarts and stop-all."""

import os

import psutil
import pytest

from supervisor.core.process import CommandError
from supervisor.proc.stat import create_time_of, is_alive
from tests.helpers import ask, connect, start_ready, wait_for, wait_state


def test_kill_children_kills_live_ones_and_skips_zombies(manager_factory):
    manager, recorder = manager_factory()
    server = start_ready(manager, "forking_clock", {"delay": 0})
    with connect(server) as sock:
        ask(sock)
    zombie = wait_for(
        lambda: recorder.of("proc", server="forking_clock", kind="status", status="zombie"), what="a zombie"
    )[0]
    socks = [connect(server) for _ in range(3)]

    def kernels_view():  # the children as psutil reads them, not as the watcher under test does
        children = psutil.Process(server.pid).children()
        return {(c.pid, c.status() == psutil.STATUS_ZOMBIE) for c in children}

    children = wait_for(
        lambda: len(kernels_view()) == 4 and kernels_view(), what="3 live children and a zombie"
    )
    live = {pid for pid, zombie in children if not zombie}
    assert {pid for pid, zombie in children if zombie} == {zombie["pid"]}
    wait_for(
        lambda: len(manager.watcher.descendants("forking_clock")) == 4, what="the watcher to know all four"
    )
    result = manager.kill_children("forking_clock", "SIGKILL")
    assert set(result["killed"]) == live
    assert result["skipped"] == [
        {"pid": zombie["pid"], "reason": f"already exited: a zombie waiting for PID {server.pid} to reap it"}
    ]
    wait_for(lambda: all(s.recv(10) == b"" for s in socks), what="clients to see their children die")
    assert any(e["kind"] == "kill" for e in manager.events_after(0)["events"])
    for sock in socks:
        sock.close()


def test_signal_one_child_by_identity(manager):
    server = start_ready(manager, "forking_clock", {"delay": 60})
    with connect(server) as sock:
        pid, created, _ = wait_for(lambda: manager.watcher.descendants("forking_clock"), what="a child")[0]
        assert manager.signal_process(pid, created, "SIGTERM")["pid"] == pid
        assert sock.recv(10) == b""


@pytest.mark.reliability("bad input", "signals to PID 1, the dashboard, a stranger, a server, a reused PID")
def test_signals_that_must_be_refused(manager, stranger, report):
    server = start_ready(manager, "forking_clock", {"delay": 60})
    with connect(server):
        pid, created, _ = wait_for(lambda: manager.watcher.descendants("forking_clock"), what="a child")[0]
        cases = [
            ((1, 0.0, "SIGKILL"), 403, "init"),
            ((os.getpid(), create_time_of(os.getpid()), "SIGKILL"), 403, "dashboard itself"),
            (
                (stranger.pid, create_time_of(stranger.pid), "SIGKILL"),
                403,
                "not a process of any server",
            ),
            ((server.pid, server.create_time, "SIGKILL"), 403, "server itself"),
            ((pid, created - 5.0, "SIGKILL"), 404, "reused"),
            ((4_000_000, 1.0, "SIGKILL"), 404, "no process"),
            ((pid, created, "SIGNOPE"), 400, "unknown signal"),
            ((-5, created, "SIGKILL"), 400, "positive"),
            ((pid, "yesterday", "SIGKILL"), 400, "create_time"),
        ]
        report["cases"] = len(cases)
        for args, status, words in cases:
            with pytest.raises(CommandError) as err:
                manager.signal_process(*args)
            assert err.value.status == status and words in err.value.message, (args, err.value.message)
        assert stranger.poll() is None
        assert is_alive(pid, created)
        assert manager.servers["forking_clock"].state.name == "RUNNING"


def test_a_zombie_is_not_killed_but_explained(manager_factory):
    manager, recorder = manager_factory()
    server = start_ready(manager, "forking_clock", {"delay": 0})
    with connect(server) as sock:
        ask(sock)
    zombie = wait_for(lambda: recorder.of("proc", kind="status", status="zombie"), what="a zombie")[0]
    with pytest.raises(CommandError) as err:
        manager.signal_process(zombie["pid"], zombie["create_time"], "SIGKILL")
    assert err.value.status == 409
    assert f"zombie waiting for PID {server.pid} to reap it" in err.value.message


def test_stop_everything_cancels_a_restart_under_way(manager):
    start_ready(manager, "web")
    assert manager.restart_later("web") == {"restarting": "web"}
    manager.stop_all()
    assert manager.settle(30)
    wait_state(manager, "web", "STOPPED")
    texts = [e["text"] for e in manager.events_after(0)["events"]]
    assert "restart of web failed: cancelled: everything was stopped meanwhile" in texts


def test_restart_later_refuses_bad_options_at_once(manager):
    with pytest.raises(CommandError) as err:
        manager.restart_later("forking_clock", {"delay": -1})
    assert err.value.status == 400


def test_unknown_server_and_bad_options(manager):
    with pytest.raises(CommandError) as err:
        manager.start("nope")
    assert err.value.status == 404
    with pytest.raises(CommandError) as err:
        manager.start("forking_clock", {"delay": 10_000})
    assert err.value.status == 400


def test_second_start_and_second_stop_are_refused(manager):
    manager.start("forking_clock")
    with pytest.raises(CommandError, match="already (starting|running)"):
        manager.start("forking_clock")
    wait_state(manager, "forking_clock", "RUNNING")
    manager.stop("forking_clock")
    with pytest.raises(CommandError, match="already stopping|is not running"):
        manager.stop("forking_clock")
    wait_state(manager, "forking_clock", "STOPPED")


def test_open_files_limit_is_raised(manager):
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft == hard or hard == resource.RLIM_INFINITY
    assert manager.subreaper is True


def test_a_servers_last_console_lines_are_published_before_it_is_stopped(manager_factory):
    manager, recorder = manager_factory()
    start_ready(manager, "forking_clock", {"delay": 0})
    manager.stop("forking_clock")
    wait_state(manager, "forking_clock", "STOPPED")
    events = [
        (kind, payload)
        for kind, payload in recorder.events
        if payload.get("server", payload.get("name")) == "forking_clock"
    ]
    stopped = next(i for i, (kind, p) in enumerate(events) if kind == "server" and p["state"] == "STOPPED")
    before = [line for kind, p in events[:stopped] if kind == "output" for line in p["lines"]]
    assert "SIGTERM received, closing server" in before  # what it said while stopping
    assert before == manager.output("forking_clock", 5000)["lines"]


def test_nothing_starts_once_the_manager_shut_down(manager):
    manager.shutdown()
    with pytest.raises(CommandError, match="forkwatch is shutting down"):
        manager.start("clock")
    assert manager.servers["clock"].state.name == "STOPPED"


def test_the_timeline_tells_a_kill_before_the_exit_it_causes(manager_factory, monkeypatch):
    """The forking server (--reap) collects a killed child at once, and its reaping is
    reported at once: "SIGKILL sent" must still come first in the timeline, and the child's
    end be told as forkwatch's kill, even when the thread that sent the signal runs again
    only after the exit was told (made sure here: the send returns only then)."""
    from supervisor.core import manager as manager_module

    manager, _ = manager_factory()

    def ended(pid):
        return f"child {pid} killed by forkwatch and reaped by its parent (wait())"

    def send_then_lag(pid, *args):
        result = real(pid, *args)
        wait_for(lambda: any(ended(pid) in e["text"] for e in manager.history.after(0)), what=ended(pid))
        return result

    real = manager_module.signal_process
    monkeypatch.setattr(manager_module, "signal_process", send_then_lag)
    server = start_ready(manager, "forking_clock", {"delay": 60, "reap": True})
    socks = [connect(server) for _ in range(3)]
    try:
        children = wait_for(
            lambda: len(d := manager.watcher.descendants("forking_clock")) == 3 and d, what="3"
        )
        for pid, created, _ in children:
            manager.signal_process(pid, created, "SIGKILL")
            texts = [e["text"] for e in manager.history.after(0)]
            told = next(i for i, text in enumerate(texts) if ended(pid) in text)
            assert texts.index(f"SIGKILL sent to PID {pid} of forking_clock") < told, texts[-4:]
    finally:
        for sock in socks:
            sock.close()
