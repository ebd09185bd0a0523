"""The three change sources behind one interface: each reports a new child of a watched
root and, once watched, its end."""

import os
import subprocess

import pytest

from supervisor.proc.sources import CHANGED, MECHANISMS, NEW, choose_source
from supervisor.proc.stat import create_time_of, descendants, read_stat
from tests.helpers import ask, connect, wait_for


@pytest.fixture(params=MECHANISMS)
def source(request):
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
