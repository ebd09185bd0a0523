"""What the benchmarks need to drive forkwatch from outside, as a user would: waiting on
a condition with a deadline, the environment of a child process, the lecture's question,
the forking server's command line, the dashboard itself run as `python -m supervisor`
with its JSON API, and the summary of a list of figures (n, median, nearest-rank p95 and
p99, max).

The bench imports nothing from the tests; the tests build their own helpers on these.
"""

import json
import math
import os
import queue
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from supervisor.core.catalog import CATALOG, PROJECT_ROOT
from supervisor.proc.signals import kill_tree_and_wait
from supervisor.proc.stat import create_time_of
from supervisor.web.play import QUESTION

ROOT = PROJECT_ROOT
TOKEN = "bench-token"
ALL_PORTS_FREE = {spec.name: {"port": 0} for spec in CATALOG if spec.port is not None}
# The bench's hundreds of viewers all come from 127.0.0.1; in a room they come from as many
# laptops, each under the dashboard's limits per address. These lift those limits.
ONE_ADDRESS_CROWD = {
    "max_connections": 2048,
    "max_connections_per_address": 1024,
    "session_rate": 1000.0,
    "session_burst": 1000,
}


class Timeout(AssertionError):
    pass


def wait_for(predicate, timeout=10.0, what="condition", interval=0.01):
    """Poll predicate() until it returns something truthy; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise Timeout(f"timed out after {timeout} s waiting for {what}; last seen: {last!r}")
        time.sleep(interval)


def child_env(**extra):
    """The environment of a process we start: unbuffered, the project importable, no
    game secret inherited."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("FORKWATCH_SECRET", None)
    env.update(extra)
    return env


def ask(sock, question=QUESTION, limit=64):
    """The lecture's exchange: the 25-byte question, then one reply line (the time, `server
    busy`, an error) with its newline; less if the server closed first."""
    sock.sendall(question)
    data = b""
    while not data.endswith(b"\n") and len(data) < limit:
        chunk = sock.recv(limit - len(data))
        if not chunk:
            break
        data += chunk
    return data


def end_group(pid, tree=()):
    """Kill what is left of the process group led by pid (a server we started) and of
    `tree` ((pid, create_time) pairs seen before), and wait until it is gone."""
    kill_tree_and_wait({pid: create_time_of(pid)}, tree, timeout=10.0)


def start_until(argv, env, prefix, lines, timeout):
    """Start a forkwatch process in a session of its own and read its output into `lines`
    until a line starts with `prefix`; (the Popen, that line)."""
    output = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "stdin": subprocess.DEVNULL}
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, start_new_session=True, **output)
    found = queue.Queue()

    def read():
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            lines.append(line)
            if line.startswith(prefix):
                found.put(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        return proc, found.get(timeout=timeout)
    except queue.Empty:
        end_group(proc.pid)
        proc.wait()
        raise AssertionError(f"{argv[2:4]} did not start: {lines[-20:]}") from None


class Dashboard:
    """forkwatch itself, run as `python -m supervisor` on a free port, every server on a
    free port too; `settings` go to its config file (else the documented defaults, but
    for a play rate a bench's many plays need); `args` go on its command line."""

    def __init__(self, folder, token, port=0, ports=None, args=(), **settings):
        self.folder = folder
        self.token = token
        self.port = port
        self.args = list(args)
        self.config = os.path.join(folder, "forkwatch.toml")
        settings = {"play_rate": 50.0, **settings}
        with open(self.config, "w") as handle:
            for key, value in settings.items():
                handle.write(f"{key} = {json.dumps(value) if isinstance(value, bool) else repr(value)}\n")
            for name, values in ALL_PORTS_FREE.items():
                handle.write(f"[servers.{name}]\nport = {(ports or {}).get(name, values['port'])}\n")
        self.proc = None
        self.lines = []

    def start(self, timeout=20.0):
        argv = [
            sys.executable,
            "-m",
            "supervisor",
            "--port",
            str(self.port),
            "--config",
            self.config,
            *self.args,
        ]
        # the token by environment, as the README advises (ps shows a --token to everyone)
        env = child_env(XDG_CONFIG_HOME=os.path.join(self.folder, "config"), FORKWATCH_TOKEN=self.token)
        self.proc, line = start_until(argv, env, "instructor: ", self.lines, timeout)
        self.url = line.split()[1].split("?")[0]
        self.port = int(self.url.rsplit(":", 1)[1].strip("/"))
        return self

    def api(self, method, path, body=None, token=True, timeout=10.0):
        """(status, JSON answer) of one API call, as the instructor unless token=False."""
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

    def page(self, path="/"):
        """The text of a page, as a viewer gets it."""
        with urllib.request.urlopen(self.url.rstrip("/") + path, timeout=10) as response:
            return response.read().decode()

    def server_detail(self, name):
        """GET /api/servers/NAME, as Manager.server_detail answers it."""
        return self.api("GET", f"/api/servers/{name}")[1]

    def start_server(self, name, options=None, timeout=15.0):
        """Start a server through the API and wait until it is RUNNING; its details."""
        status, answer = self.api("POST", f"/api/servers/{name}/start", {"options": options or {}})
        assert status == 200, answer
        return wait_for(
            lambda: (info := self.server_detail(name))["state"] == "RUNNING" and info,
            timeout,
            f"{name} to be RUNNING",
        )

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        """Stop the dashboard (it stops every server first); its exit code."""
        code, self.proc = stop_process(self.proc, sig, timeout), None
        return code


def stop_process(proc, sig, timeout):
    """Signal a process started by start_until, wait (then kill its group), close its
    output; its exit code (None when there was none)."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        end_group(proc.pid)
        proc.wait()
    proc.stdout.close()
    return proc.returncode


def summary(values, digits=2):
    """n, median, p95, p99 and max of values (ms or whatever unit they are in), rounded.
    Percentiles by nearest rank: p95 is the smallest value at least 95 % of the values do
    not exceed, always one of them (of fewer than 20 values, p95 is the max)."""
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def rank(p):
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    return {
        "n": len(values),
        "median": round(statistics.median(ordered), digits),
        "p95": round(rank(95), digits),
        "p99": round(rank(99), digits),
        "max": round(ordered[-1], digits),
    }


def forking_clock_argv(*flags):
    return [sys.executable, "-m", "servers.forking_clock", "--port", "0", "--delay", "0", *flags]
