"""Nothing survives: Ctrl-C, SIGKILL of the supervisor (the watchdog), a crash of both (the next start),
and one supervisor per config folder."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from supervisor.proc.stat import create_time_of, is_alive
from tests.helpers import ROOT, TOKEN, Dashboard, child_env, connect, start_ready, wait_for

SUPERVISOR_SCRIPT = textwrap.dedent(
    """
    import json, signal, socket, sys
    from supervisor.core.manager import Manager
    from supervisor.core.catalog import CATALOG
    from tests.helpers import wait_for
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
    # The state file also names the stranger's group and the stranger itself with the wrong
    # create_time: spared.
    state_file = tmp_path / "state" / "running-groups.json"
    state = json.loads(state_file.read_text())
    state["groups"][str(stranger.pid)] = create_time_of(stranger.pid) - 100.0
    state["processes"].append([stranger.pid, create_time_of(stranger.pid) - 100.0])
    state_file.write_text(json.dumps(state))
    manager, _ = manager_factory(state_dir=str(tmp_path / "state"))
    assert manager.cleaned_at_start == len(survivors)
    assert not [p for p in survivors if p.is_running() and p.status() != "zombie"]
    assert stranger.poll() is None
    assert "cleaned up" in manager.events_after(0)["events"][0]["text"]


ESCAPE_SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys
    from supervisor.core.manager import Manager
    from supervisor.proc.stat import read_stat
    from tests.helpers import misbehaving, wait_for
    state_dir, cgroups = sys.argv[1], sys.argv[2]
    m = Manager({"state_dir": state_dir, "runtime_dir": state_dir, "cgroups": cgroups},
                extra_servers=[misbehaving("escape")])
    m.start_background()
    m.start("escape")
    server = m.servers["escape"]
    line = wait_for(lambda: next((x for x in server.output.tail() if x.startswith("grandchild ")), None),
                    20, "the grandchild")
    grandchild, child = int(line.split()[1]), int(line.split()[4])
    wait_for(lambda: m.watcher.owner_of(grandchild), 20, "the watcher to know the grandchild")
    os.kill(child, signal.SIGUSR1)  # its parent ends: it is reparented to this supervisor
    wait_for(lambda: read_stat(grandchild).ppid == os.getpid(), 20, "the grandchild reparented")
    print(json.dumps([grandchild, server.pid, os.getsid(grandchild)]), flush=True)
    signal.pause()  # until the test kills this supervisor
    """
)


@pytest.mark.parametrize("cgroups", ["auto", "off"])  # off: the watchdog's recorded processes alone
def test_sigkill_of_the_supervisor_also_ends_a_descendant_that_left_the_groups_and_the_tree(
    tmp_path, cgroups
):
    proc = subprocess.Popen(
        [sys.executable, "-c", ESCAPE_SCRIPT, str(tmp_path / "state"), cgroups],
        stdout=subprocess.PIPE,
        env=child_env(),
        cwd=ROOT,
        start_new_session=True,
    )
    escaped = None
    try:
        grandchild, server, session = json.loads(proc.stdout.readline())
        escaped = psutil.Process(grandchild)
        assert session == grandchild != os.getpgid(server)  # in no group of the server's
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        wait_for(
            lambda: not escaped.is_running() or escaped.status() == "zombie",
            2.0,
            "the watchdog to kill the escaped grandchild",
        )
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        if escaped is not None and escaped.is_running():
            escaped.kill()  # psutil refuses if the PID now names another process


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


def test_a_second_supervisor_on_the_same_folder_is_refused_and_harms_nothing(manager_factory, tmp_path):
    from supervisor.core.guard import AlreadyRunning
    from supervisor.core.manager import Manager

    manager, _ = manager_factory()
    server = start_ready(manager, "web")
    with pytest.raises(AlreadyRunning, match=f"another forkwatch \\(PID {os.getpid()}\\)"):
        Manager({"state_dir": str(tmp_path / "state"), "runtime_dir": str(tmp_path / "run")})
    assert server.state.name == "RUNNING" and is_alive(server.pid, server.create_time)


def tree_of(pid):
    try:
        return [pid, *[p.pid for p in psutil.Process(pid).children(recursive=True)]]
    except psutil.NoSuchProcess:
        return []


def alive(pids):
    found = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                found.append(pid)
        except psutil.NoSuchProcess:
            continue
    return found


@pytest.mark.reliability("faults", "kill -9 of the dashboard with 2 servers and 20 forked children")
def test_kill_9_of_the_dashboard_leaves_nothing_and_the_next_start_says_so(tmp_path, report):
    board = Dashboard(str(tmp_path), TOKEN).start()
    port = board.port
    try:
        info = board.start_server("forking_clock", {"delay": 120})
        board.start_server("web")
        socks = [socket.create_connection(("127.0.0.1", info["port"])) for _ in range(20)]
        wait_for(lambda: board.server_detail("forking_clock")["children"] == 20, what="20 children")
        victims = [p for p in tree_of(board.proc.pid) if p != board.proc.pid]
        assert len(victims) >= 23  # 2 servers, 20 children, the watchdog
        began = time.monotonic()
        board.proc.send_signal(signal.SIGKILL)
        wait_for(lambda: not alive(victims), 2.0, "every server and child gone")
        gone_in = time.monotonic() - began
        board.stop()
        for sock in socks:
            sock.close()
        board.port = port
        board.start()
        events = board.api("GET", "/api/events?after=0")[1]["events"]
        assert any("did not stop cleanly (2 server groups were running)" in e["text"] for e in events)
        report["cases"] = len(victims)
        report["detail"] = f"all gone in {gone_in * 1000:.0f} ms; the next start reported it"
    finally:
        board.stop()
