"""Helpers for tests that use real processes: waiting with deadlines, running a lecture
server as a subprocess, and proving that nothing was left behind."""

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADDRESS_LINE = re.compile(r"^listening on (tcp|udp)://([^:]+|\[[^\]]+\]):(\d+)$|^listening on unix:(.+)$")


class Timeout(AssertionError):
    pass


def wait_for(predicate, timeout=10.0, what="condition", interval=0.01):
    """Poll predicate() until it returns something truthy; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise Timeout(f"timed out after {timeout} s waiting for {what}; last seen: {last!r}")
        time.sleep(interval)


def child_env(**extra):
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("FORKWATCH_SECRET", None)
    env.update(extra)
    return env


class ServerProcess:
    """A lecture server run as `python -m servers.NAME ARGS`, with its output collected."""

    def __init__(self, module, *args, env=None, stdin=False):
        self.module = module
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"servers.{module}", *args],
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
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        return sock

    def descendants(self):
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Signal the server, wait for it, and kill whatever is left of its group."""
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        kill_group(self.proc.pid)
        self.proc.wait(timeout)
        self._reader.join(timeout)
        self.proc.stdout.close()
        if self.proc.stdin:
            self.proc.stdin.close()
        return self.proc.returncode


def kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def group_members(pgid):
    """Live (non-zombie-reaped) processes whose process group is pgid."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == pgid:
                found.append(proc.pid)
        except (ProcessLookupError, PermissionError):
            continue
    return found


QUESTION = b"What is the time?".ljust(25)


def recv_reply(sock, limit=64):
    """One reply line of the clock servers (the time, `server busy`, an error), with its
    newline; less if the server closed first."""
    data = b""
    while not data.endswith(b"\n") and len(data) < limit:
        chunk = sock.recv(limit - len(data))
        if not chunk:
            break
        data += chunk
    return data


def ask(sock, question=QUESTION):
    """The lecture's exchange: the 25-byte question, then the reply line."""
    sock.sendall(question)
    return recv_reply(sock)


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


class Dashboard:
    """forkwatch itself, run as `python -m supervisor` on a free port, for live tests."""

    def __init__(self, folder, token, port=0, ports=None, **settings):
        from tests.core_support import ALL_PORTS_FREE

        self.folder = folder
        self.token = token
        self.port = port
        self.config = os.path.join(folder, "forkwatch.toml")
        settings = {"stop_timeout": 1.0, "play_rate": 50.0, "play_burst": 50, **settings}
        with open(self.config, "w") as handle:
            for key, value in settings.items():
                handle.write(f"{key} = {value!r}\n")
            for name, values in ALL_PORTS_FREE.items():
                handle.write(f"[servers.{name}]\nport = {(ports or {}).get(name, values['port'])}\n")
        self.proc = None
        self.lines = []

    def start(self, timeout=20.0):
        env = child_env(XDG_CONFIG_HOME=os.path.join(self.folder, "config"))
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "supervisor",
                "--port",
                str(self.port),
                "--token",
                self.token,
                "--config",
                self.config,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
        found = queue.Queue()

        def read():
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.lines.append(line)
                if line.startswith("instructor: "):
                    found.put(line)

        threading.Thread(target=read, daemon=True).start()
        try:
            line = found.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the dashboard did not start: {self.lines[-20:]}") from None
        self.url = line.split()[1].split("?")[0]
        self.port = int(self.url.rsplit(":", 1)[1].strip("/"))
        return self

    def api(self, method, path, body=None, token=True, timeout=10.0):
        import json
        import urllib.error
        import urllib.request

        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(
            self.url.rstrip("/") + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def server(self, name):
        return self.api("GET", f"/api/servers/{name}")[1]

    def wait_state(self, name, state, timeout=15.0):
        return wait_for(
            lambda: self.server(name)["state"] == state and self.server(name),
            timeout,
            f"{name} to be {state}",
        )

    def start_server(self, name, options=None):
        """Start a server through the API and wait until it is RUNNING; its details."""
        status, answer = self.api("POST", f"/api/servers/{name}/start", {"options": options or {}})
        assert status == 200, answer
        return self.wait_state(name, "RUNNING")

    def stop_everything(self):
        self.api("POST", "/api/stop-all")
        wait_for(
            lambda: all(
                s["state"] in ("STOPPED", "EXITED", "FATAL") for s in self.api("GET", "/api/servers")[1]
            ),
            15.0,
            "every server stopped",
        )

    def descendants(self):
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        if self.proc is None:
            return None
        tree = self.descendants()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_group(self.proc.pid)
            self.proc.wait()
        wait_for(
            lambda: not [p for p in tree if p.is_running() and p.status() != "zombie"],
            5.0,
            "the dashboard's tree gone",
        )
        self.proc.stdout.close()
        code, self.proc = self.proc.returncode, None
        return code
