"""The tests' helpers, in one place: waiting with deadlines (one wait_for, one wait_state),
one way to connect a client to a server, constants taken from the code, a lecture server
or the whole dashboard run as a real subprocess, a Manager and an app with every port
free, and the pages' Playwright steps.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import threading

import psutil
from hypothesis import HealthCheck, settings
from playwright.sync_api import expect

from bench.helpers import ALL_PORTS_FREE, ROOT, Timeout, ask, child_env, end_group, wait_for
from bench.helpers import Dashboard as DashboardProcess
from supervisor.core.catalog import ServerSpec
from supervisor.core.manager import Manager
from supervisor.core.process import ADDRESS_LINE
from supervisor.web.play import QUESTION

__all__ = ["ALL_PORTS_FREE", "QUESTION", "ROOT", "Timeout", "ask", "child_env", "wait_for"]

TOKEN = "test-token-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
CTIME = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:\d\d:\d\d \d{4}$"
)


def wait_state(where, name, state, timeout=15.0):
    """Wait until server `name` is in `state`, in a Manager or a live Dashboard (both answer
    server_detail(name) as the API does); returns those details."""
    seen = {}

    def reached():
        seen.update(where.server_detail(name))
        return seen["state"] == state and dict(seen)

    try:
        return wait_for(reached, timeout, f"{name} to be {state}")
    except Timeout:
        raise Timeout(
            f"timed out after {timeout} s waiting for {name} to be {state}; "
            f"it is {seen.get('state')} ({seen.get('reason')})"
        ) from None


def descendants_of(pid):
    """psutil's view of every descendant of pid (checked apart from the code's /proc reads)."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def connect(server, timeout=10.0):
    """A TCP client of a server: a ManagedServer, a ServerProcess, or a port number."""
    if isinstance(server, int):
        return socket.create_connection(("127.0.0.1", server), timeout=timeout)
    return socket.create_connection(
        (getattr(server, "host", None) or "127.0.0.1", server.port), timeout=timeout
    )


# --- lecture servers run alone ------------------------------------------------------------


class ServerProcess:
    """A lecture server run as `python -m servers.NAME ARGS` (or a dotted module, e.g. the
    misbehaving fixture), with its output collected."""

    def __init__(self, module, *args, env=None, stdin=False):
        self.module = module
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module if "." in module else f"servers.{module}", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            env=child_env(**(env or {})),
            cwd=ROOT,
            start_new_session=True,
        )
        self.lines = []
        self._lines_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.host = self.port = self.unix_path = None

    def _read(self):
        for raw in self.proc.stdout:
            with self._lines_lock:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def output(self):
        with self._lines_lock:
            return list(self.lines)

    def wait_ready(self, timeout=10.0):
        """Wait for the `listening on …` first line and remember the address."""

        def first_line():
            if self.proc.poll() is not None and not self.output():
                raise AssertionError(f"servers.{self.module} exited with {self.proc.returncode}")
            out = self.output()
            return out[0] if out else None

        line = wait_for(first_line, timeout, f"servers.{self.module} to print its address")
        match = ADDRESS_LINE.match(line)
        assert match, f"first line is not an address line: {line!r}"
        if match.group(4):
            self.unix_path = match.group(4)
        else:
            self.host, self.port = match.group(2), int(match.group(3))
        return self

    def wait_line(self, pattern, timeout=10.0):
        regex = re.compile(pattern)

        def found():
            return next((line for line in self.output() if regex.search(line)), None)

        return wait_for(found, timeout, f"a line matching {pattern!r} from servers.{self.module}")

    def connect(self, timeout=10.0):
        return connect(self, timeout)

    def descendants(self):
        return descendants_of(self.proc.pid)

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Signal the server, wait for it, and kill whatever is left of its tree."""
        tree = set()
        for proc in self.descendants():
            try:
                tree.add((proc.pid, proc.create_time()))
            except psutil.NoSuchProcess:
                continue
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        end_group(self.proc.pid, tree)
        self.proc.wait(timeout)
        self._reader.join(timeout)
        self.proc.stdout.close()
        if self.proc.stdin:
            self.proc.stdin.close()
        return self.proc.returncode


def send_line(sock, text):
    sock.sendall(text if isinstance(text, bytes) else text.encode())


def recv_line(sock, limit=65536):
    """Read one newline-terminated line (without the newline); '' on EOF before one."""
    data = b""
    while not data.endswith(b"\n") and len(data) < limit:
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data.rstrip(b"\n").decode("utf-8", "replace")


def recv_all(sock, limit=1 << 20):
    data = b""
    while len(data) < limit:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def http_get(host, port, raw_request, timeout=10.0):
    """Send raw bytes, read the whole HTTP/1.0 response; returns (status, headers, body)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(raw_request)
        data = recv_all(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else None
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return status, headers, body.decode("utf-8", "replace")


def get(host, port, path, timeout=10.0):
    return http_get(host, port, f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode(), timeout)


# --- the supervisor in this process ----------------------------------------------------------


def extra_server(name, module, *args, package="servers", description="a server for a test", pids_max=None):
    """The spec of `python -m PACKAGE.MODULE ARGS` on a free TCP port, as an extra server
    (with its cgroup's pids.max, where cgroups are in use)."""
    return ServerSpec(
        name=name,
        title=description,
        module=module,
        package=package,
        port=0,
        protocol="tcp",
        client=None,
        description=description,
        args=args,
        **({"pids_max": pids_max} if pids_max is not None else {}),
    )


def misbehaving(mode, *args, name=None, pids_max=None):
    """The spec of tests/fixtures/misbehaving.py in `mode`, as an extra server."""
    return extra_server(
        name or mode.replace("-", "_"),
        "misbehaving",
        "--mode",
        mode,
        *args,
        package="tests.fixtures",
        description=f"misbehaving on purpose: {mode}",
        pids_max=pids_max,
    )


class Recorder:
    """Collects every event a Manager publishes."""

    def __init__(self):
        self.events = []
        self._lock = threading.Lock()

    def __call__(self, kind, payload):
        with self._lock:
            self.events.append((kind, payload))

    def of(self, event_type, **match):
        with self._lock:
            found = [p for k, p in self.events if k == event_type]
        return [p for p in found if all(p.get(key) == value for key, value in match.items())]

    def states(self, name):
        return [p["state"] for p in self.of("server", name=name)]


def make_manager(tmp_path, mechanism="auto", extra_servers=(), **settings):
    """A Manager with every port free, its background loops running, its events recorded."""
    config = {
        "state_dir": str(tmp_path / "state"),
        "runtime_dir": str(tmp_path / "run"),
        "servers": dict(ALL_PORTS_FREE),
        "watch_mechanism": mechanism,
        "stop_timeout": 1.0,
    }
    config.update(settings)
    manager = Manager(config, extra_servers=extra_servers)
    recorder = Recorder()
    manager.subscribe(recorder)
    manager.start_background()
    return manager, recorder


def start_ready(manager, name, options=None):
    manager.start(name, options)
    wait_state(manager, name, "RUNNING")
    return manager.servers[name]


def app_config(tmp_path, **extra):
    config = {
        "state_dir": str(tmp_path / "state"),
        "runtime_dir": str(tmp_path / "run"),
        "token": TOKEN,
        "secret_key": "test-signing-key",
        "servers": dict(ALL_PORTS_FREE),
        "stop_timeout": 1.0,
        "play_rate": 100.0,
    }
    config.update(extra)
    return config


def manager_of(app):
    return app.extensions["forkwatch"]


def browser_session(app, instructor=False):
    """A Flask test client as one browser session (a viewer, or the instructor logged in
    by the token) and the headers its POSTs carry (the page's CSRF token)."""
    client = app.test_client()
    if instructor:
        response = client.get(f"/?token={TOKEN}")
        assert response.status_code == 303 and response.headers["Location"] == "/"
    page = client.get("/").get_data(as_text=True)
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)">', page).group(1)
    return client, {"X-CSRF-Token": csrf}


def live_client(app, flask_client=None, auth=None):
    """A Socket.IO test client of /live (with a browser session's cookie, or a token)."""
    socketio = app.extensions["forkwatch_socketio"]
    return socketio.test_client(app, namespace="/live", flask_test_client=flask_client, auth=auth)


def received(sio, name):
    return [msg["args"][0] for msg in sio.get_received("/live") if msg["name"] == name]


# --- the dashboard as a real process ------------------------------------------------------------


class Dashboard(DashboardProcess):
    """The dashboard for live and browser tests (a 1 s stop_timeout, for speed); stopping
    it proves its tree is gone."""

    def __init__(self, folder, token, port=0, ports=None, args=(), **settings):
        super().__init__(folder, token, port, ports, args, **{"stop_timeout": 1.0, **settings})

    def stop_everything(self):
        """Stop every server and leave the room as it was: nothing on stage, no step."""
        self.api("POST", "/api/stage", {})
        self.api("POST", "/api/lesson/go", {"step": 0})
        self.api("POST", "/api/stop-all")
        wait_for(
            lambda: all(
                s["state"] in ("STOPPED", "EXITED", "FATAL")
                for s in _servers_or_fail(self.api("GET", "/api/servers"))
            ),
            15.0,
            "every server stopped",
        )

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        tree = descendants_of(self.proc.pid) if self.proc is not None else []
        code = super().stop(sig, timeout)
        wait_for(
            lambda: not [p for p in tree if p.is_running() and p.status() != "zombie"],
            5.0,
            "the dashboard's tree gone",
        )
        return code


def start_cli_until_instructor_line(argv, env):
    """`forkwatch` (any command line) run until it prints its instructor URL: (process, lines)."""
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True
    )
    lines = []
    for raw in proc.stdout:
        lines.append(raw.decode().rstrip())
        if lines[-1].startswith("instructor:"):
            break
    return proc, lines


def running_dashboard(tmp_path_factory, name):
    """A live dashboard in a folder of its own, for a fixture to yield from: stopped, and
    its tree proven gone, when the fixture ends."""
    board = Dashboard(str(tmp_path_factory.mktemp(name)), TOKEN).start()
    yield board
    board.stop()


def open_as_instructor(page, board):
    page.goto(f"{board.url}?token={TOKEN}")
    expect(page.locator("#conn")).to_have_text("live")
    expect(page.locator("#role")).to_have_text("instructor")
    return page


def open_as_viewer(page, board):
    page.goto(board.url)
    expect(page.locator("#conn")).to_have_text("live")
    return page


def card(page, name):
    return page.locator(f"#card-{name}")


def unfold(page, name):
    """Open a card folded to one line (a stopped server's) by a tap on its head."""
    box = card(page, name)
    if "folded" in (box.get_attribute("class") or "").split():
        box.locator(".card-head h2").click()
        expect(box).not_to_have_class(re.compile(r"\bfolded\b"))
    return box


def start_from_page(page, name, **options):
    box = unfold(page, name)
    for option, value in options.items():
        field = box.locator(f"form.controls input[name={option}]")
        if isinstance(value, bool):
            field.set_checked(value)
        else:
            field.fill(str(value))
    box.locator("button[data-command=start]").click()
    expect(box.locator("[data-field=state]")).to_have_text("RUNNING")
    return box


def screenshot(page, name, **options):
    """With FORKWATCH_SCREENSHOTS=1, the page as docs/NAME.png (the README shows them)."""
    if os.environ.get("FORKWATCH_SCREENSHOTS") == "1":
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=os.path.join(ROOT, "docs", f"{name}.png"), **options)


def _servers_or_fail(answer):
    status, body = answer
    assert status == 200, answer
    return body
