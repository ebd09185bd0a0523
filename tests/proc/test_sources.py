"""The three change sources behind one interface: each reports a new child of a watched
root and, once watched, its end; netlink is used only when the kernel accepts our
subscription and proves it with a test child, else auto takes procfs; an overrun of its
buffer is reported."""

import os
import socket
import subprocess

import pytest

from supervisor.proc import netlink
from supervisor.proc.sources import CHANGED, LOST, MECHANISMS, NEW, NetlinkSource, choose_source
from supervisor.proc.stat import create_time_of, descendants, read_stat
from tests.helpers import ask, connect, wait_for
from tests.proc.kernel import NETLINK_ALLOWED, netlink_answer, require


@pytest.fixture(params=MECHANISMS)
def source(request):
    require(request.param)
    source = choose_source(request.param, interval=0.01, psutil_interval=0.01)
    assert source.name == request.param
    yield source
    source.close()


def drained_until(source, wanted, what):
    """Drain (waiting on fileno() where there is one) until a change in `wanted` arrives."""
    seen = []

    def arrived():
        seen.extend(source.drain())
        return [c for c in seen if (c.kind, c.pid) in wanted]

    return wait_for(arrived, 10.0, what)


def test_a_new_child_and_its_end_are_reported(run_server, source):
    server = run_server("forking_clock", "--port", "0", "--delay", "0", "--reap")
    source.watch(server.proc.pid, create_time_of(server.proc.pid), root=True)
    with connect(server) as sock:
        child = wait_for(lambda: descendants(server.proc.pid))[0]  # it waits for the question
        new = drained_until(source, {(NEW, child.pid)}, "the child reported")
        assert new[0].parent in (0, server.proc.pid)  # netlink knows the parent; the others do not say
        source.watch(child.pid, child.create_time)
        assert ask(sock).endswith(b"\n")  # answered: the child exits and is reaped
    drained_until(source, {(CHANGED, child.pid)}, "the child's end reported")
    source.forget(child.pid)


def test_a_zombie_is_reported_as_a_change(run_server, source):
    server = run_server("forking_clock", "--port", "0", "--delay", "0")
    source.watch(server.proc.pid, create_time_of(server.proc.pid), root=True)
    with connect(server) as sock:
        child = wait_for(lambda: descendants(server.proc.pid))[0]
        source.watch(child.pid, child.create_time)
        source.drain()
        assert ask(sock).endswith(b"\n")
    drained_until(source, {(CHANGED, child.pid)}, "the child's exit reported (a zombie: no --reap)")


def test_a_zombies_reaping_is_reported_as_another_change(source):
    """A watched child exits (CHANGED: a zombie), then is reaped (CHANGED again) where the
    source can tell: psutil always, pidfds on kernels that report a reaping."""
    child = subprocess.Popen(["sleep", "0.3"])
    source.watch(os.getpid(), create_time_of(os.getpid()), root=True)  # psutil lists our children
    source.watch(child.pid, create_time_of(child.pid))
    wait_for(lambda: read_stat(child.pid).state == "Z", what="the child a zombie")
    drained_until(source, {(CHANGED, child.pid)}, "the exit reported")
    child.wait()
    if source.reports_reaps:
        drained_until(source, {(CHANGED, child.pid)}, "the reaping reported")
    assert source.name != "psutil" or source.reports_reaps


def test_an_unknown_mechanism_is_refused():
    with pytest.raises(ValueError, match="unknown watch mechanism 'kqueue'"):
        choose_source("kqueue")


def test_auto_takes_the_mechanism_the_kernel_allows_this_user():
    """Run as root and as an unprivileged user: the choice follows the kernel's own answer."""
    answer = netlink_answer()
    source = choose_source("auto")
    try:
        assert source.name == ("netlink" if answer == 0 else "procfs"), f"the kernel answered {answer}"
    finally:
        source.close()


def test_a_refused_subscription_is_never_used_and_auto_takes_procfs(monkeypatch):
    # An operation the kernel does not know: it answers EINVAL, as it answers EPERM to a
    # user it does not allow. Events may still flow (another program subscribed).
    monkeypatch.setattr(netlink, "PROC_CN_MCAST_LISTEN", 99)
    with pytest.raises(OSError, match="refused the subscription: Invalid argument"):
        NetlinkSource().open()
    source = choose_source("auto")
    try:
        assert source.name == "procfs"
    finally:
        source.close()


def test_a_subscription_without_an_answer_is_never_used(monkeypatch):
    monkeypatch.setattr(NetlinkSource, "_control", lambda self, op: 12345)  # nothing sent
    with pytest.raises(OSError, match="did not answer the subscription"):
        NetlinkSource(answer_timeout=0.2).open()


@pytest.mark.skipif(not NETLINK_ALLOWED, reason="the kernel refuses this user's netlink subscription")
def test_an_overrun_of_the_netlink_buffer_is_reported_as_lost():
    source = choose_source("netlink")
    try:
        source.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)  # the kernel's minimum
        for _ in range(40):  # each a fork, an exec and an exit notice, none read meanwhile
            subprocess.run(["true"], check=True)
        assert any(change.kind == LOST for change in source.drain())
    finally:
        source.close()
