"""Each server in its own cgroup (this machine allows it: root, cgroup v2 with cgroup.kill,
v1 pids): Stop ends a daemon that left the server's tree, a fork bomb stops at pids.max
while the dashboard answers, and when the dashboard and its watchdog are both SIGKILLed
the next start ends everything the dead run left — which process groups alone cannot."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from supervisor.proc.stat import read_stat, reap
from tests.helpers import ROOT, child_env, make_manager, misbehaving, start_ready, wait_for, wait_state
from tests.web.floods import HealthProbe, baseline_p99, served
from tests.web.test_room import assert_healthz_kept_up


def alive(pid):
    stat = read_stat(pid)
    return stat is not None and stat.state != "Z"


@pytest.mark.needs_root
def test_stop_ends_a_daemon_that_left_the_servers_tree(manager_factory):
    manager, _ = manager_factory(extra_servers=[misbehaving("daemon-child")])
    assert manager.containment is not None, manager.containment_text
    server = start_ready(manager, "daemon_child")
    line = wait_for(lambda: [x for x in server.output.tail() if x.startswith("daemon ")], what="the daemon")[
        0
    ]
    daemon = int(line.split()[1])
    assert read_stat(daemon).session != read_stat(server.pid).session
    manager.stop("daemon_child")
    wait_state(manager, "daemon_child", "STOPPED")
    assert not alive(daemon)
    reap(daemon)


@pytest.mark.reliability(
    "faults", "dashboard and watchdog both SIGKILLed, a daemon outside every tree (cgroups, then groups)"
)
@pytest.mark.parametrize("cgroups", [pytest.param("auto", marks=pytest.mark.needs_root), "off"])
def test_after_both_are_killed_the_next_start_ends_what_is_left(tmp_path, cgroups, report):
    state_dir = str(tmp_path / "state")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.core.supervise_until_killed", state_dir, cgroups],
        stdout=subprocess.PIPE,
        env=child_env(),
        cwd=ROOT,
        start_new_session=True,
    )
    pids = json.loads(proc.stdout.readline())
    os.kill(pids["watchdog"], signal.SIGKILL)
    proc.kill()
    proc.wait(10)
    proc.stdout.close()
    left = [pids["server"], pids["daemon"]]
    try:
        assert all(alive(pid) for pid in left), "with both dead nothing acts until the next start"
        began = time.monotonic()
        manager, _ = make_manager(tmp_path, cgroups=cgroups)
        took = (time.monotonic() - began) * 1000
        said = [e["text"] for e in manager.history.after(0) if e["kind"] == "info"]
        manager.shutdown()
        survivors = [pid for pid in left if alive(pid)]
        report["cases"] = len(left)
        if cgroups == "auto":
            assert survivors == [], f"{survivors} outlived the next start"
            assert manager.cleaned_at_start >= 2
            report["detail"] = f"cgroups: the next start ({took:.0f} ms) ended the server and the daemon"
        else:
            assert survivors == [pids["daemon"]], survivors  # the limit of process groups
            report["detail"] = "process groups alone: the next start ended the server; the daemon outlived it"
        assert any("did not stop cleanly" in text for text in said), said
    finally:
        for pid in left:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
            wait_for(lambda pid=pid: not alive(pid), 5, "the leftover killed")
            reap(pid)


@pytest.mark.needs_root
@pytest.mark.reliability("faults", "a fork bomb under pids.max 64 while /healthz is timed, then Stop")
def test_a_fork_bomb_stops_at_pids_max_and_the_dashboard_answers(app_factory, report):
    app = app_factory(extra_servers=[misbehaving("fork-bomb", pids_max=64)])
    manager = app.extensions["forkwatch"]
    with served(app) as http:
        quiet = baseline_p99(http.server_port)
        with HealthProbe(http.server_port) as probe:
            manager.start("fork_bomb")
            wait_state(manager, "fork_bomb", "RUNNING")
            bomb = wait_for(
                lambda: (p := manager.server_detail("fork_bomb")["pids"]) and p["refused"] > 200 and p,
                20,
                "forks refused at the cap",
            )
            time.sleep(1.0)  # the bomb goes on against its cap while /healthz is timed
        assert bomb["max"] == 64 and bomb["current"] <= 64
        began = time.monotonic()
        manager.stop("fork_bomb")
        wait_state(manager, "fork_bomb", "STOPPED")
        stopped_in = (time.monotonic() - began) * 1000
        assert_healthz_kept_up(probe, quiet)
    report["cases"] = bomb["refused"]
    report["detail"] = (
        f"{bomb['current']} tasks at most, {bomb['refused']} forks refused; /healthz {probe.figures()} (quiet p99 "
        f"{quiet:.1f}); Stop ended it in {stopped_in:.0f} ms"
    )


def test_reading_a_servers_cgroup_while_it_is_removed_never_fails(manager_factory):
    """The API describes servers (with their cgroup's pids) while runs end and their cgroups
    go: a read of a file of a cgroup removed meanwhile (ENODEV, ENOENT) is no error."""
    manager, _ = manager_factory()
    failures, done = [], threading.Event()

    def describe_all_the_time():
        while not done.is_set():
            try:
                manager.list_servers()
            except Exception as exc:  # any failure at all is what this test looks for
                failures.append(repr(exc))

    reader = threading.Thread(target=describe_all_the_time)
    reader.start()
    try:
        for _ in range(10):
            start_ready(manager, "clock")
            manager.stop("clock")
            wait_state(manager, "clock", "STOPPED")
    finally:
        done.set()
        reader.join(10)
    assert failures == []
