"""Cgroups for the servers, on this machine's real hierarchies (root; a cgroup v2 mount
with cgroup.kill, and v1's pids and freezer): exact membership, a kill at once, pids.max,
what a dead run left, and the fall-back where a user may not make cgroups."""

import os
import subprocess
import sys

import pytest

from supervisor.proc import cgroups
from supervisor.proc.stat import read_stat, reap
from tests.helpers import ROOT, child_env, wait_for

# Making cgroups needs root here (nothing is delegated): CI's unprivileged run leaves these
# out by their mark, and runs the last test, the refusal, as itself.
needs_root = pytest.mark.needs_root

DAEMON = """
import os, signal, sys, time
middle = os.fork()
if middle == 0:
    os.setsid()
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(os.getpid(), flush=True)
        time.sleep(3600)
    os._exit(0)
os.waitpid(middle, 0)
time.sleep(3600)
"""
BOMB = """
import os, time
while True:
    try:
        os.fork()
    except OSError:
        time.sleep(0.05)
"""


@pytest.fixture
def containment(tmp_path):
    found, why_not = cgroups.probe(str(tmp_path))
    assert found is not None, f"this machine (root, cgroups mounted) should allow cgroups: {why_not}"
    yield found
    found.clean_previous()
    found.close()


def alive(pid):
    stat = read_stat(pid)
    return stat is not None and stat.state != "Z"


def run_in(cgroup, code):
    """python -c code inside the cgroup; its first line of output."""
    proc = subprocess.Popen(cgroup.wrap([sys.executable, "-c", code]), stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


@needs_root
def test_a_daemon_that_left_every_tree_is_still_a_member_and_dies_with_the_cgroup(containment):
    cgroup = containment.create("daemon")
    proc, daemon = run_in(cgroup, DAEMON)
    daemon = int(daemon)
    try:
        stat, ours = read_stat(daemon), read_stat(proc.pid)
        assert (
            stat.session != ours.session and stat.pgrp != ours.pgrp and stat.ppid != proc.pid
        )  # no tree of ours
        members = {pid for pid, _ in cgroup.members()}
        assert members == {proc.pid, daemon}
        cgroup.kill()
        assert cgroup.wait_empty(2.0)
        wait_for(lambda: not alive(daemon), 2, "the daemon dead")
        assert proc.wait(5) == -9
    finally:
        proc.stdout.close()
        reap(daemon)
    assert cgroup.remove() and not os.path.exists(cgroup.dirs["v2"])


@needs_root
def test_the_v1_freezer_ends_a_tree_at_once_too(containment, tmp_path):
    """On a machine without cgroup v2's cgroup.kill: freeze, SIGKILL each, thaw."""
    assert "freezer" in cgroups._mounts(), "this machine mounts the v1 freezer"
    parent = os.path.join(cgroups._mounts()["freezer"] + cgroups._own_paths()["freezer"], "forkwatch-v1-test")
    os.makedirs(parent, exist_ok=True)
    v1 = cgroups.Containment({"freezer": parent}, None)
    cgroup = v1.create("daemon")
    proc, daemon = run_in(cgroup, DAEMON)
    daemon = int(daemon)
    try:
        assert {pid for pid, _ in cgroup.members()} == {proc.pid, daemon}
        cgroup.kill()
        assert cgroup.wait_empty(2.0)
        assert proc.wait(5) == -9
    finally:
        proc.stdout.close()
        reap(daemon)
        v1.close()
    assert not os.path.exists(parent)


@needs_root
@pytest.mark.reliability("faults", "a fork bomb in a cgroup with pids.max 30, then one kill")
def test_pids_max_stops_a_fork_bomb_and_one_kill_ends_it(containment, report):
    cgroup = containment.create("bomb", pids_max=30)
    bomb = subprocess.Popen(cgroup.wrap([sys.executable, "-c", BOMB]))
    try:
        wait_for(lambda: (cgroup.pids() or {}).get("refused", 0) > 100, 15, "forks refused at the cap")
        figures = cgroup.pids()
        assert figures["max"] == 30 and figures["current"] <= 30
        cgroup.kill()
        assert cgroup.wait_empty(2.0)
    finally:
        bomb.wait(5)
    report["cases"] = figures["refused"]
    report["detail"] = (
        f"{figures['current']} tasks at most, {figures['refused']} forks refused; one kill, all gone"
    )


@needs_root
def test_the_next_run_ends_what_a_dead_run_left(tmp_path):
    first, _ = cgroups.probe(str(tmp_path))
    cgroup = first.create("left")
    proc, daemon = run_in(cgroup, DAEMON)
    daemon = int(daemon)
    try:
        second, _ = cgroups.probe(str(tmp_path))  # the same config folder: the same parents
        assert second.parents == first.parents
        assert second.clean_previous() == 2
        assert not alive(daemon) and proc.wait(5) == -9
        assert second.leftovers() == []
    finally:
        proc.stdout.close()
        reap(daemon)
        first.close()


def test_where_a_user_may_not_make_cgroups_it_says_why(tmp_path):
    """As `nobody` (made so by setpriv when the tests run as root, or as the tests' own
    unprivileged user)."""
    os.chmod(tmp_path, 0o777)
    code = f"from supervisor.proc import cgroups; print(cgroups.probe({str(tmp_path)!r}))"
    as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if os.getuid() == 0 else []
    done = subprocess.run(
        [*as_nobody, sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=ROOT,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "(None, 'no cgroup hierarchy here lets this user make cgroups (not root, none delegated)')"
    )
