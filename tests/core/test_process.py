"""ManagedServer with real subprocesses: start and readiness, exits, crash loops, stop, output."""

import json
import os
import pathlib
import signal
import threading

import psutil
import pytest

from supervisor.core import process
from supervisor.proc import signals
from supervisor.proc.sockets import listens
from supervisor.proc.stat import exists, is_alive, read_stat
from tests.helpers import ask, connect, misbehaving, start_ready, wait_for, wait_state

# --- start and readiness -------------------------------------------------------------


def test_start_reaches_running_with_the_real_port(manager_factory):
    manager, recorder = manager_factory()
    server = start_ready(manager, "clock")
    assert server.port > 0 and server.port != 12091
    assert recorder.states("clock") == ["STARTING", "RUNNING"]
    assert listens(server.pid, server.port)
    kinds = [e["kind"] for e in manager.events_after(0)["events"]]
    assert kinds[:2] == ["start", "ready"]


def test_readiness_never_connects_to_the_server(manager):
    """--once exits after one client: if readiness probed by connecting, it would be gone."""
    server = start_ready(manager, "clock", {"once": True})
    assert server.state.name == "RUNNING"
    assert not any(line.startswith("connected at") for line in server.output.tail())
    with connect(server) as sock:
        assert ask(sock).endswith(b"\n")
    wait_state(manager, "clock", "EXITED")
    assert server.exit_code == 0


@pytest.mark.parametrize("name", ["clock_udp", "clock_unix", "web", "swap", "secret_number", "guess_word"])
def test_every_server_becomes_ready(manager, name):
    server = start_ready(manager, name)
    if name == "clock_unix":
        assert server.unix_path and os.path.exists(server.unix_path)
    else:
        assert server.port > 0
    manager.stop(name)
    wait_state(manager, name, "STOPPED")


def test_secret_is_passed_by_environment_never_argv(manager):
    server = start_ready(manager, "secret_number")
    proc = psutil.Process(server.pid)
    argv = proc.cmdline()
    assert server.secret and "--secret" not in argv and server.secret not in argv
    assert proc.environ()["FORKWATCH_SECRET"] == server.secret
    assert "FORKWATCH_TOKEN" not in proc.environ()


def test_fork_demo_is_ready_when_spawned_and_reads_stdin(manager_factory):
    manager, recorder = manager_factory()
    server = start_ready(manager, "fork_demo")
    wait_for(lambda: "press Enter to fork a child, q to quit" in server.output.tail(), what="the prompt")
    manager.send_stdin("fork_demo", "")
    fork = wait_for(lambda: recorder.of("proc", server="fork_demo", kind="fork"), what="a fork event")[0]
    wait_for(
        lambda: recorder.of("proc", server="fork_demo", kind="status", pid=fork["pid"]),
        what="the child turning zombie",
    )
    manager.send_stdin("fork_demo", "q")
    wait_state(manager, "fork_demo", "EXITED")
    assert server.exit_code == 0
    assert any(line.startswith("hello from child") for line in server.output.tail())


def test_port_in_use_is_fatal_and_names_the_holder(manager_factory, run_server):
    holder = run_server("clock", "--port", "0")
    manager, _ = manager_factory(servers={"clock": {"port": holder.port}})
    manager.start("clock")
    wait_state(manager, "clock", "FATAL")
    reason = manager.servers["clock"].reason
    assert reason.startswith(f"port {holder.port} is in use by PID {holder.proc.pid} (")
    assert "servers.clock" in reason


@pytest.mark.reliability("faults", "a server that crashes at start (FATAL with its own words)")
def test_a_server_that_fails_at_start_is_fatal_with_its_words(manager_factory, report):
    manager, _ = manager_factory(extra_servers=[misbehaving("exit-at-once")])
    manager.start("exit_at_once")
    wait_state(manager, "exit_at_once", "FATAL")
    assert (
        "exited with code 2 before it was ready: cannot start: told to fail"
        == manager.servers["exit_at_once"].reason
    )


# --- exits, crashes, backoff -----------------------------------------------------------


def test_a_killed_server_is_exited_with_its_signal(manager_factory):
    manager, recorder = manager_factory()
    server = start_ready(manager, "web")
    os.kill(server.pid, signal.SIGKILL)
    wait_state(manager, "web", "EXITED")
    assert server.exit_code == -9 and server.reason == "was killed by SIGKILL"
    assert recorder.states("web") == ["STARTING", "RUNNING", "EXITED"]


@pytest.mark.reliability("faults", "a server that crashes later (EXITED, output drained)")
def test_crash_later_with_its_children_gone_too(manager_factory, report):
    manager, _ = manager_factory(extra_servers=[misbehaving("crash-later", "--after", "0.3")])
    start_ready(manager, "crash_later")
    wait_state(manager, "crash_later", "EXITED")
    server = manager.servers["crash_later"]
    assert server.exit_code == 3
    assert server.output.tail()[-1] == "crashing now"  # output drained before the exit


@pytest.mark.reliability("faults", "a crash loop (BACKOFF twice, then FATAL)")
def test_crash_loop_backs_off_then_is_fatal(manager_factory, report):
    spec = misbehaving("crash-later", "--after", "0.05", name="flapper")
    manager, recorder = manager_factory(
        extra_servers=[spec], autorestart=True, startsecs=5.0, backoff=0.05, startretries=3
    )
    manager.start("flapper")
    wait_state(manager, "flapper", "FATAL", timeout=20)
    states = recorder.states("flapper")
    assert states.count("BACKOFF") == 2 and states.count("EXITED") == 3
    assert "exited too quickly 3 times" in manager.servers["flapper"].reason


# --- stop ---------------------------------------------------------------------------------


@pytest.mark.reliability("faults", "a server that ignores SIGTERM (SIGKILL after the timeout)")
def test_stop_kills_a_server_that_ignores_sigterm(manager_factory, report):
    manager, _ = manager_factory(extra_servers=[misbehaving("ignore-term")], stop_timeout=0.5)
    server = start_ready(manager, "ignore_term")
    wait_for(lambda: "ignoring SIGTERM" in server.output.tail(), what="the handler installed")
    manager.stop("ignore_term")
    wait_state(manager, "ignore_term", "STOPPED")
    assert server.exit_code == -9


@pytest.mark.reliability("faults", "a child that called setsid() (still killed)")
def test_stop_kills_a_child_that_left_the_group(manager_factory, report):
    manager, _ = manager_factory(extra_servers=[misbehaving("setsid-child")], stop_timeout=0.5)
    server = start_ready(manager, "setsid_child")
    line = wait_for(
        lambda: next((x for x in server.output.tail() if x.startswith("child ")), None), what="the child"
    )
    child = psutil.Process(int(line.split()[1]))
    assert os.getsid(child.pid) == child.pid != os.getpgid(server.pid)
    manager.stop("setsid_child")
    wait_state(manager, "setsid_child", "STOPPED")
    assert not is_alive(child.pid, child.create_time())


def spy_on_tree_kills(monkeypatch):
    """Each tree kill's signal, and what its groups' leaders were at that moment."""
    kills = []
    real = process.kill_tree_and_wait

    def spy(groups, tree=(), sig=signal.SIGKILL, timeout=5.0):
        kills.append((sig, [read_stat(pgid) for pgid in groups]))
        return real(groups, tree, sig, timeout)

    monkeypatch.setattr(process, "kill_tree_and_wait", spy)
    return kills


def test_leftovers_are_killed_while_the_exited_servers_zombie_holds_the_group(manager_factory, monkeypatch):
    """Until the server is reaped, its PID (the group's number) cannot be given to another
    process, so the group kill cannot hit a stranger's group."""
    kills = spy_on_tree_kills(monkeypatch)
    manager, _ = manager_factory()
    server = start_ready(manager, "forking_clock", {"delay": 60})
    with connect(server):
        pid, created, _ = wait_for(lambda: manager.watcher.descendants("forking_clock"), what="a child")[0]
        os.kill(server.pid, signal.SIGKILL)  # the server dies on its own; its child is a leftover
        wait_state(manager, "forking_clock", "EXITED")
    assert [sig for sig, _ in kills] == [signal.SIGKILL]
    leader = kills[0][1][0]
    assert leader is not None and leader.state == "Z", "the group was killed after its leader was reaped"
    assert not exists(pid, created)


def test_after_ctrl_c_the_group_is_cleaned_while_the_servers_zombie_holds_it(manager_factory, monkeypatch):
    kills = spy_on_tree_kills(monkeypatch)
    manager, _ = manager_factory()
    server = start_ready(manager, "forking_clock", {"delay": 60})
    with connect(server):
        wait_for(lambda: manager.watcher.descendants("forking_clock"), what="a child")
        manager.interrupt("forking_clock")  # the lecture's Ctrl-C: it kills its children and exits
        wait_state(manager, "forking_clock", "EXITED")
    assert [sig for sig, _ in kills] == [signal.SIGKILL]
    leader = kills[0][1][0]
    assert leader is not None and leader.state == "Z", "the group was cleaned after its leader was reaped"


def test_a_stops_sigkill_reaches_the_group_while_the_servers_zombie_holds_it(manager_factory, monkeypatch):
    kills = spy_on_tree_kills(monkeypatch)
    manager, _ = manager_factory(extra_servers=[misbehaving("setsid-child")], stop_timeout=0.3)
    server = start_ready(manager, "setsid_child")
    wait_for(lambda: any(x.startswith("child ") for x in server.output.tail()), what="the child")
    manager.stop("setsid_child")  # the server dies of SIGTERM; its child ignores it
    wait_state(manager, "setsid_child", "STOPPED")
    assert [sig for sig, _ in kills] == [signal.SIGTERM, signal.SIGKILL]
    leader = kills[1][1][0]
    assert leader is not None and leader.state == "Z", "SIGKILL came after the server was reaped"


def test_a_process_that_survives_sigkill_makes_the_stop_fatal_and_stays_guarded(manager_factory, monkeypatch):
    """A descendant that escaped the group (setsid) and that SIGKILL does not end (the
    signal path stubbed for it alone): the stop reports it, never STOPPED."""
    # process groups alone: a cgroup's kill, which needs no signal path, would end it
    manager, recorder = manager_factory(
        extra_servers=[misbehaving("setsid-child")], stop_timeout=0.3, cgroups="off"
    )
    server = start_ready(manager, "setsid_child")
    line = wait_for(
        lambda: next((x for x in server.output.tail() if x.startswith("child ")), None), what="the child"
    )
    child = psutil.Process(int(line.split()[1]))
    real_send = signals._send
    immune = {child.pid}

    def send(pidfd, sig):
        if pid_of_pidfd(pidfd) in immune:
            return signals.SignalResult.SENT  # as if sent: the kernel never delivers it
        return real_send(pidfd, sig)

    monkeypatch.setattr(signals, "_send", send)
    monkeypatch.setattr(process, "KILL_WAIT", 0.5)
    try:
        manager.stop("setsid_child")
        detail = wait_state(manager, "setsid_child", "FATAL")
        assert detail["reason"] == f"1 process survived SIGKILL: PID {child.pid}"
        assert "STOPPED" not in recorder.states("setsid_child")
        assert child.is_running()
        state_file = pathlib.Path(manager.settings["state_dir"]) / "running-groups.json"
        guarded = wait_for(
            lambda: (
                (state := json.loads(state_file.read_text()))
                and child.pid in [pid for pid, _ in state["processes"]]
                and state
            ),
            what="the survivor in the guard's state file",
        )
        assert str(server.pid) in guarded["groups"]
    finally:
        child.kill()
        child.wait(5)


def pid_of_pidfd(pidfd):
    """The PID a pidfd refers to (its Pid: line in /proc/self/fdinfo)."""
    with open(f"/proc/self/fdinfo/{pidfd}") as handle:
        for line in handle:
            if line.startswith("Pid:"):
                return int(line.split()[1])
    return None


def test_stopped_only_when_the_tree_is_empty(manager_factory):
    manager, recorder = manager_factory()
    server = start_ready(manager, "forking_clock", {"delay": 60})
    socks = [connect(server) for _ in range(20)]
    wait_for(lambda: len(manager.watcher.descendants("forking_clock")) == 20, what="20 children")
    children = [(pid, created) for pid, created, _ in manager.watcher.descendants("forking_clock")]
    manager.stop("forking_clock")
    wait_state(manager, "forking_clock", "STOPPED")
    assert not any(exists(pid, created) for pid, created in children)
    assert len(recorder.of("proc", server="forking_clock", kind="exit")) == 20
    for sock in socks:
        sock.close()


# --- output -------------------------------------------------------------------------------


@pytest.mark.reliability("faults", "a server printing 100 MB, half on one line (memory bounded)")
def test_output_flood_stays_bounded(manager_factory, report):
    manager, recorder = manager_factory(extra_servers=[misbehaving("flood", "--megabytes", "100")])
    server = start_ready(manager, "flood")
    wait_for(lambda: server.output.tail(1) == ["flood done"], 60, "the flood to end")
    lines = server.output.tail()
    assert len(lines) == 5000
    assert lines[-2] == "x" * 2000 + f" … [{50 * 2**20 - 2000} bytes cut]"  # cut once, the true count
    assert max(len(line) for line in lines) == len(lines[-2])
    rss = psutil.Process().memory_info().rss
    assert rss < 400 * 1024 * 1024, f"the supervisor grew to {rss >> 20} MiB"
    sent = sum(len(p["lines"]) for p in recorder.of("output", server="flood"))
    assert sent < 100 * 1024 * 1024 // 100  # the live stream was thinned, not sent whole


def test_a_50_kb_line_is_cut_once_and_says_how_much(manager_factory):
    manager, recorder = manager_factory(extra_servers=[misbehaving("long-line")])
    server = start_ready(manager, "long_line")
    wait_for(lambda: server.output.tail(1) == ["long line done"], what="the long line printed")
    expected = "x" * 2000 + " … [48000 bytes cut]"
    assert server.output.tail(2)[0] == expected
    wait_for(lambda: any(expected in p["lines"] for p in recorder.of("output", server="long_line")))


def read_all_lines(payload, max_line):
    """(pid, text, bytes cut) of each line of payload, written to a console socket."""
    from supervisor.core.output import console_socket, read_console

    reader, writer = console_socket()
    sender = threading.Thread(target=lambda: (writer.sendall(payload), writer.close()))
    sender.start()
    lines = []
    read_console(reader, lambda pid, text, cut: lines.append((pid, text, cut)), max_line)
    sender.join()
    return lines


def test_huge_line_is_cut_and_invalid_utf8_replaced():
    me = os.getpid()
    payload = b"a" * 50_000 + b"\nbad \xff\xfe bytes\r\nlast without newline"
    assert read_all_lines(payload, 100) == [
        (me, "a" * 100, 49_900),
        (me, "bad \ufffd\ufffd bytes", 0),
        (me, "last without newline", 0),
    ]


def test_a_cut_never_splits_a_character():
    # "é" is two bytes: a cut after 5 bytes keeps two of them and drops the torn one whole
    me = os.getpid()
    assert read_all_lines("éééé\n".encode(), 5) == [(me, "éé", 4)]
    assert read_all_lines("ééé\n".encode(), 6) == [(me, "ééé", 0)]


@pytest.mark.reliability("faults", "a server that closes stdout early")
def test_closing_stdout_early_does_not_end_the_server(manager_factory, report):
    manager, _ = manager_factory(extra_servers=[misbehaving("close-stdout")])
    start_ready(manager, "close_stdout")
    manager.stop("close_stdout")
    wait_state(manager, "close_stdout", "STOPPED")


def test_the_console_numbers_its_lines_for_snapshots_and_batches():
    from supervisor.core.output import OutputBuffer

    console = OutputBuffer(max_lines=300)
    for i in range(250):
        console.add("stderr" if i in (100, 200) else "stdout", f"line {i}", pid=1000 + i)
    lines, after = console.tail_numbered(200)
    assert lines == [f"line {i}" for i in range(50, 250)] and after == 250
    pending, dropped = console.take_pending(limit=160)
    assert dropped == 90
    assert [(b["stream"], b["seq"], len(b["lines"]), b["pids"][0]) for b in pending] == [
        ("stdout", 90, 10, 1090),
        ("stderr", 100, 1, 1100),
        ("stdout", 101, 99, 1101),
        ("stderr", 200, 1, 1200),
        ("stdout", 201, 49, 1201),
    ]
    assert console.take_pending() == ([], 0)


def test_a_restart_keeps_the_console_with_a_separator(manager):
    server = start_ready(manager, "clock")
    manager.stop("clock")
    wait_state(manager, "clock", "STOPPED")
    first = server.output.tail()
    assert first[-1] == "SIGTERM received, closing server"
    start_ready(manager, "clock")
    wait_for(lambda: server.output.tail(1) == ["press ctrl c to stop server"], what="the second run's lines")
    lines = server.output.tail()
    assert lines[: len(first)] == first
    assert lines[len(first)] == f"──── clock started again as PID {server.pid} ────"
    assert lines[len(first) + 1].startswith("listening on tcp://")
