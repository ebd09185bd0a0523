"""The fixtures: lecture servers, Managers, apps and a live dashboard that each prove at
teardown that nothing they started is left (pytest is a child subreaper from the session's
start, so even an orphan of a test is seen, and named with the test that left it);
Debian's Chromium for the browser tests; a row of the reliability report
(tests/report.py, written when FORKWATCH_REPORT=1)."""

import os
import signal
import subprocess
import sys

import psutil
import pytest

from bench.hall_processes import RedisServer
from supervisor.proc.host import become_subreaper
from supervisor.proc.stat import read_stat
from tests import report as reliability_report
from tests.helpers import ROOT, ServerProcess, app_config, make_manager, running_dashboard, wait_for

ME = os.getpid()
pytest_plugins = ["pytester"]


def _descendants():
    """Our descendants, less the Playwright browser's own processes: the browser is a
    session fixture that Chromium manages (it keeps a spare renderer around between
    pages), and pytest-playwright closes it at the end of the session."""
    found = set()
    try:
        procs = psutil.Process(ME).children(recursive=True)
    except psutil.NoSuchProcess:
        return found
    for proc in procs:
        try:
            if proc.name().startswith(("chromium", "chrome")) or "playwright" in proc.name():
                continue
            found.add((proc.pid, proc.create_time()))
        except psutil.NoSuchProcess:
            continue
    return found


def _reap_my_zombies():
    """Orphans reparented to this process (a subreaper once a Manager ran here) are
    reaped by PID, as the supervisor itself does."""
    try:
        children = psutil.Process(ME).children()
    except psutil.NoSuchProcess:
        return
    for child in children:
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(child.pid, os.WNOHANG)
        except (psutil.NoSuchProcess, ChildProcessError):
            continue


def _still_running(procs):
    _reap_my_zombies()
    alive = []
    for pid, created in procs:
        try:
            proc = psutil.Process(pid)
            if proc.create_time() == created:
                alive.append((pid, proc.name(), proc.status(), " ".join(proc.cmdline())[:120]))
        except psutil.NoSuchProcess:
            continue
    return alive


@pytest.fixture(scope="session", autouse=True)
def subreaper():
    """pytest is a child subreaper from the session's start: a process orphaned in any
    test is reparented here, not to init, so the leak check sees it whatever the order
    of the tests (a Manager makes its process a subreaper too, but only once it runs)."""
    assert become_subreaper(), "pytest could not become a child subreaper"


@pytest.fixture(autouse=True)
def no_leaked_processes(request, subreaper):
    """Every test must leave no process of its own behind, orphans included (checked with
    psutil); a leak fails the test that left it, by name."""
    before = _descendants()
    yield
    started = _descendants() - before
    if not started:
        return
    try:
        wait_for(lambda: not _still_running(started), 5.0, "processes started by the test to end")
    except AssertionError:
        leaked = _still_running(started)
        for pid, _, _, _ in leaked:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        pytest.fail(f"{request.node.nodeid} leaked processes (pid, name, status, command): {leaked}")


@pytest.fixture
def stranger():
    """A process that belongs to no server: forkwatch must never signal it."""
    proc = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"], start_new_session=True)
    wait_for(lambda: read_stat(proc.pid), what="the stranger to exist")
    yield proc
    proc.kill()
    proc.wait()


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


@pytest.fixture
def manager_factory(tmp_path):
    """Managers with every port free; each is shut down and proven empty at teardown."""
    made = []

    def make(mechanism="auto", extra_servers=(), **settings):
        manager, recorder = make_manager(tmp_path, mechanism, extra_servers, **settings)
        made.append(manager)
        return manager, recorder

    yield make
    for manager in made:
        pids = [s.pid for s in manager.servers.values() if s.pid]
        manager.shutdown()
        for server in manager.servers.values():
            assert server.state.name in ("STOPPED", "EXITED", "FATAL"), (
                f"{server.name} is {server.state.name}"
            )
        for pid in pids:
            wait_for(lambda pid=pid: not _alive_in_group(pid), 5.0, f"group {pid} to be empty")


def _alive_in_group(pgid):
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, PermissionError):
            continue
    return False


@pytest.fixture
def manager(manager_factory):
    return manager_factory()[0]


@pytest.fixture
def app_factory(tmp_path):
    """Apps made by create_app() with every port free; each is shut down and proven empty."""
    from supervisor import create_app

    made = []

    def make(**extra):
        app = create_app(app_config(tmp_path, **extra))
        made.append(app)
        return app

    yield make
    for app in made:
        manager = app.extensions["forkwatch"]
        pids = [s.pid for s in manager.servers.values() if s.pid]
        app.forkwatch_shutdown()
        for pid in pids:
            wait_for(lambda pid=pid: not _alive_in_group(pid), 5.0, f"group {pid} to be empty")


@pytest.fixture
def app(app_factory):
    return app_factory()


@pytest.fixture
def client(app):
    return app.test_client()


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Debian's Chromium, never a downloaded browser; no background network traffic."""
    assert os.path.exists(CHROMIUM), "browser tests need /usr/bin/chromium (make test installs it)"
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture(scope="session")
def dashboard(tmp_path_factory):
    """One live dashboard for the module's tests; every test leaves it with nothing running."""
    yield from running_dashboard(tmp_path_factory, "dashboard")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """Debian's redis-server on a free loopback port, nothing saved; stopped, and proven
    gone, at the end of the session. Each hall uses a channel of its own on it."""
    server = RedisServer(str(tmp_path_factory.mktemp("redis"))).start()
    yield server
    server.stop()


@pytest.fixture
def live(dashboard):
    yield dashboard
    dashboard.stop_everything()


def pytest_configure(config):
    config.addinivalue_line("markers", "reliability(area, what): a row of the README's reliability table")
    if os.environ.get("FORKWATCH_REPORT") == "1":
        config.pluginmanager.register(
            reliability_report.ReliabilityReport(ROOT), "forkwatch-reliability-report"
        )


@pytest.fixture
def report(request):
    """This test's row of the reliability table: fill in `cases` and `detail`."""
    return reliability_report.new_row(request.node)
