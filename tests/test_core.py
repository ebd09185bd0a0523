"""The supervisor core with real subprocesses and real forks."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading

import psutil
import pytest

from supervisor import proctree
from supervisor.process import CommandError
from tests.core_support import connect, misbehaving, start_ready, wait_state
from tests.support import ROOT, ask, child_env, wait_for

MECHANISMS = ["netlink", "procfs", "psutil"]


# --- start and readiness -------------------------------------------------------------


def test_start_reaches_running_with_the_real_port(manager_factory):
    manager, recorder = manager_factory()
    server = start_ready(manager, "clock")
    assert server.port > 0 and server.port != 12091
    assert recorder.states("clock") == ["STARTING", "RUNNING"]
    assert proctree.listens(server.pid, server.port)
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


def test_second_start_and_second_stop_are_refused(manager):
    manager.start("forking_clock")
    with pytest.raises(CommandError, match="already (starting|running)"):
        manager.start("forking_clock")
    wait_state(manager, "forking_clock", "RUNNING")
    manager.stop("forking_clock")
    with pytest.raises(CommandError, match="already stopping|is not running"):
        manager.stop("forking_clock")
    wait_state(manager, "forking_clock", "STOPPED")


def test_unknown_server_and_bad_options(manager):
    with pytest.raises(CommandError) as err:
        manager.start("nope")
    assert err.value.status == 404
    with pytest.raises(CommandError) as err:
        manager.start("forking_clock", {"delay": 10_000})
    assert err.value.status == 400


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
    assert not proctree.is_alive(child.pid, child.create_time())


def test_stopped_only_when_the_tree_is_empty(manager_factory):
    manager, recorder = manager_factory()
    server = start_ready(manager, "forking_clock", {"delay": 60})
    socks = [connect(server) for _ in range(20)]
    wait_for(lambda: len(manager.watcher.descendants("forking_clock")) == 20, what="20 children")
    children = [(pid, created) for pid, created, _ in manager.watcher.descendants("forking_clock")]
    manager.stop("forking_clock")
    wait_state(manager, "forking_clock", "STOPPED")
    assert not any(proctree.exists(pid, created) for pid, created in children)
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
    assert max(len(line) for line in lines) <= 2000 + 40
    rss = psutil.Process().memory_info().rss
    assert rss < 400 * 1024 * 1024, f"the supervisor grew to {rss >> 20} MiB"
    sent = sum(len(p["lines"]) for p in recorder.of("output", server="flood"))
    assert sent < 100 * 1024 * 1024 // 100  # the live stream was thinned, not sent whole


def test_huge_line_is_cut_and_invalid_utf8_replaced():
    from supervisor.process import read_lines

    read_fd, write_fd = os.pipe()
    payload = b"a" * 50_000 + b"\nbad \xff\xfe bytes\r\nlast without newline"
    writer = threading.Thread(target=lambda: (os.write(write_fd, payload), os.close(write_fd)))
    writer.start()
    lines = []
    read_lines(os.fdopen(read_fd, "rb"), lines.append, 100)
    writer.join()
    assert lines[0] == "a" * 101 + " … [49899 bytes cut]"
    assert lines[1] == "bad \ufffd\ufffd bytes"
    assert lines[2] == "last without newline"


@pytest.mark.reliability("faults", "a server that closes stdout early")
def test_closing_stdout_early_does_not_end_the_server(manager_factory, report):
    manager, _ = manager_factory(extra_servers=[misbehaving("close-stdout")])
    start_ready(manager, "close_stdout")
    manager.stop("close_stdout")
    wait_state(manager, "close_stdout", "STOPPED")


# --- the live tree --------------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_two_hundred_clients_at_once_none_missed(manager_factory, mechanism):
    manager, recorder = manager_factory(mechanism=mechanism)
    assert manager.mechanism == mechanism
    server = start_ready(manager, "forking_clock", {"delay": 0, "max_children": 300})
    answers = []
    lock = threading.Lock()

    def client():
        with connect(server, timeout=30) as sock:
            data = ask(sock)
        with lock:
            answers.append(data)

    threads = [threading.Thread(target=client) for _ in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == 200 and all(a.endswith(b"\n") for a in answers)

    def forked_in_console():
        return {int(line.split()[2]) for line in server.output.tail() if line.startswith("appending PID")}

    forked = wait_for(
        lambda: len(forked_in_console()) == 200 and forked_in_console(), what="200 forks in the console"
    )
    wait_for(
        lambda: {p["pid"] for p in recorder.of("proc", server="forking_clock", kind="fork")} >= forked,
        15,
        "200 fork events",
    )
    wait_for(
        lambda: (
            {p["pid"] for p in recorder.of("proc", server="forking_clock", kind="status", status="zombie")}
            >= forked
        ),
        15,
        "200 zombie events",
    )
    detail = manager.server_detail("forking_clock")
    assert detail["children"] == 200
    assert sum(p["status"] == "zombie" for p in detail["tree"]) == 200


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_fork_exit_and_peer_are_reported(manager_factory, mechanism):
    manager, recorder = manager_factory(mechanism=mechanism)
    server = start_ready(manager, "forking_clock", {"delay": 0, "reap": True})
    with connect(server) as sock:
        local = f"127.0.0.1:{sock.getsockname()[1]}"
        fork = wait_for(lambda: recorder.of("proc", server="forking_clock", kind="fork"), what="fork event")[
            0
        ]
        assert fork["peer"] == local and fork["ppid"] == server.pid
        assert ask(sock).endswith(b"\n")
    wait_for(lambda: recorder.of("proc", kind="exit", pid=fork["pid"]), what="exit event once reaped")


def test_stats_are_published(manager_factory):
    manager, recorder = manager_factory()
    server = start_ready(manager, "forking_clock", {"delay": 30})
    with connect(server):
        stats = wait_for(
            lambda: [s for s in recorder.of("stats", server="forking_clock") if len(s["procs"]) == 2],
            what="stats",
        )
        assert all(p["rss"] > 0 and p["cpu_percent"] >= 0 for p in stats[-1]["procs"])


# --- signals --------------------------------------------------------------------------------


def test_kill_children_kills_live_ones_and_skips_zombies(manager_factory):
    manager, recorder = manager_factory()
    server = start_ready(manager, "forking_clock", {"delay": 0})
    with connect(server) as sock:
        ask(sock)
    zombie = wait_for(
        lambda: recorder.of("proc", server="forking_clock", kind="status", status="zombie"), what="a zombie"
    )[0]
    socks = [connect(server) for _ in range(3)]
    wait_for(
        lambda: len(manager.watcher.descendants("forking_clock")) == 4, what="3 live children and a zombie"
    )
    live = {pid for pid, _, status in manager.watcher.descendants("forking_clock") if status != "zombie"}
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
            ((os.getpid(), proctree.create_time_of(os.getpid()), "SIGKILL"), 403, "dashboard itself"),
            (
                (stranger.pid, proctree.create_time_of(stranger.pid), "SIGKILL"),
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
        assert proctree.is_alive(pid, created)
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


# --- nothing survives -----------------------------------------------------------------------

SUPERVISOR_SCRIPT = textwrap.dedent(
    """
    import json, signal, socket, sys
    from supervisor.manager import Manager
    from supervisor.catalog import CATALOG
    from tests.support import wait_for
    state_dir = sys.argv[1]
    m = Manager({"state_dir": state_dir, "runtime_dir": state_dir,
                 "servers": {s.name: {"port": 0} for s in CATALOG if s.port is not None}})
    m.start_background()
    m.start("forking_clock", {"delay": 60})
    m.start("web")
    wait_for(lambda: all(m.servers[n].state.name == "RUNNING" for n in ("forking_clock", "web")), 20, "RUNNING")
    socks = [socket.create_connection(("127.0.0.1", m.servers["forking_clock"].port)) for _ in range(%d)]
    wait_for(lambda: len(m.watcher.descendants("forking_clock")) >= %d, 20, "the children")
    pids = [m.servers["forking_clock"].pid, m.servers["web"].pid, m.guard.watchdog_pid]
    pids += [pid for pid, _, _ in m.watcher.descendants("forking_clock")]
    print(json.dumps(pids), flush=True)
    signal.pause()  # until the test kills this supervisor
    """
)


def run_supervisor_script(tmp_path, children):
    script = SUPERVISOR_SCRIPT % (children, children)
    return subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "state")],
        stdout=subprocess.PIPE,
        env=child_env(),
        cwd=ROOT,
        start_new_session=True,
    )


def test_sigkill_of_the_supervisor_leaves_nothing_within_two_seconds(tmp_path):
    proc = run_supervisor_script(tmp_path, 20)
    try:
        pids = json.loads(proc.stdout.readline())
        procs = [psutil.Process(pid) for pid in pids]
        assert len(procs) == 23
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        wait_for(
            lambda: not [p for p in procs if p.is_running() and p.status() != "zombie"],
            2.0,
            "every process to be gone",
        )
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_a_restart_cleans_what_a_crash_left_and_spares_strangers(tmp_path, manager_factory, stranger):
    # A crash that took the watchdog with it: kill -9 of the whole session at once.
    proc = run_supervisor_script(tmp_path, 3)
    try:
        pids = json.loads(proc.stdout.readline())
        watchdog = psutil.Process(pids[2])
        watchdog.kill()
        wait_for(lambda: not watchdog.is_running() or watchdog.status() == "zombie", what="the watchdog dead")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.stdout.close()
    survivors = [psutil.Process(pid) for pid in pids[:2] + pids[3:]]
    assert all(p.is_running() for p in survivors)
    # The state file also names the stranger's group with the wrong create_time: spared.
    state = tmp_path / "state" / "running-groups.json"
    groups = json.loads(state.read_text())
    groups[str(stranger.pid)] = proctree.create_time_of(stranger.pid) - 100.0
    state.write_text(json.dumps(groups))
    manager, _ = manager_factory(state_dir=str(tmp_path / "state"))
    assert manager.cleaned_at_start == len(survivors)
    assert not [p for p in survivors if p.is_running() and p.status() != "zombie"]
    assert stranger.poll() is None
    assert "cleaned up" in manager.events_after(0)["events"][0]["text"]


def test_shutdown_stops_everything(manager_factory):
    manager, _ = manager_factory()
    servers = [start_ready(manager, name) for name in ("clock", "forking_clock", "swap")]
    sock = connect(servers[1])
    wait_for(lambda: manager.watcher.descendants("forking_clock"), what="a child")
    tree = [pid for pid, _, _ in manager.watcher.descendants("forking_clock")] + [s.pid for s in servers]
    manager.shutdown()
    assert all(s.state.name == "STOPPED" for s in servers)
    assert not [pid for pid in tree if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
    sock.close()


def test_open_files_limit_is_raised(manager):
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft == hard or hard == resource.RLIM_INFINITY
    assert manager.subreaper is True


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


def test_a_second_supervisor_on_the_same_folder_is_refused_and_harms_nothing(manager_factory, tmp_path):
    from supervisor.guard import AlreadyRunning
    from supervisor.manager import Manager

    manager, _ = manager_factory()
    server = start_ready(manager, "web")
    with pytest.raises(AlreadyRunning, match=f"another forkwatch \\(PID {os.getpid()}\\)"):
        Manager({"state_dir": str(tmp_path / "state"), "runtime_dir": str(tmp_path / "run")})
    assert server.state.name == "RUNNING" and proctree.is_alive(server.pid, server.create_time)
