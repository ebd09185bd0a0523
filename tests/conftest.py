import os
import signal

import psutil
import pytest

from tests.support import ServerProcess, wait_for

ME = os.getpid()


def _descendants():
    try:
        return {(p.pid, p.create_time()) for p in psutil.Process(ME).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def _still_running(procs):
    alive = []
    for pid, created in procs:
        try:
            proc = psutil.Process(pid)
            if proc.create_time() == created:
                alive.append((pid, proc.name(), proc.status()))
        except psutil.NoSuchProcess:
            continue
    return alive


@pytest.fixture(autouse=True)
def no_leaked_processes():
    """Every test must leave no process of its own behind (checked with psutil)."""
    before = _descendants()
    yield
    started = _descendants() - before
    if not started:
        return
    try:
        wait_for(lambda: not _still_running(started), 5.0, "processes started by the test to end")
    except AssertionError:
        leaked = _still_running(started)
        for pid, _, _ in leaked:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        pytest.fail(f"test leaked processes: {leaked}")


@pytest.fixture
def run_server():
    """Start lecture servers; every one is stopped and its whole group killed at teardown."""
    started = []

    def start(module, *args, env=None, stdin=False, ready=True):
        server = ServerProcess(module, *args, env=env, stdin=stdin)
        started.append(server)
        if ready:
            server.wait_ready()
        return server

    yield start
    for server in started:
        server.stop()
        assert not server.descendants(), f"servers.{server.module} left children"
