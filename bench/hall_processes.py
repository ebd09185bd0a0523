"""A lecture hall's other processes, run as a user runs them: Debian's redis-server on a
free loopback port with no persistence, and `forkwatch viewer` workers."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request

import psutil
import redis

from bench.helpers import child_env, start_until, stop_process, wait_for

REDIS_SERVER = "/usr/bin/redis-server"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """redis-server on 127.0.0.1 only, nothing saved (`--save '' --appendonly no`); it can
    be stopped and started again on the same port (the same URL)."""

    def __init__(self, folder, port=None):
        self.folder = folder
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None

    def start(self, timeout=10.0):
        executable = REDIS_SERVER if os.path.exists(REDIS_SERVER) else shutil.which("redis-server")
        assert executable, "the hall needs Debian's redis-server (make test installs it)"
        self.proc = subprocess.Popen(
            [executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            + ["--dir", self.folder, "--protected-mode", "yes", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        client = redis.Redis.from_url(self.url, socket_timeout=1.0, socket_connect_timeout=1.0)
        try:
            wait_for(lambda: self._answers(client), timeout, f"redis-server on port {self.port} to answer")
        finally:
            client.close()
        return self

    def _answers(self, client):
        if self.proc.poll() is not None:
            raise AssertionError(f"redis-server exited with {self.proc.returncode} (port {self.port} taken?)")
        try:
            return client.ping()
        except redis.RedisError:
            return False

    def stop(self, timeout=10.0):
        """SIGTERM, wait, and prove the process gone."""
        if self.proc is None:
            return
        pid = self.proc.pid
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, (
            f"redis-server {pid} is still running"
        )


class ViewerWorker:
    """`forkwatch viewer` on a free port, fed by `queue_url` (given in the environment, as
    the README advises), for the supervisor at `supervisor_url`, on `channel` (the
    supervisor's `message_channel`) when given; `settings` go to its config file."""

    def __init__(self, folder, queue_url, supervisor_url, channel=None, **settings):
        self.folder = folder
        self.queue_url = queue_url
        self.supervisor_url = supervisor_url
        self.settings = {**settings, **({"message_channel": channel} if channel else {})}
        self.proc = None
        self.lines = []

    def start(self, timeout=20.0):
        argv = [sys.executable, "-m", "supervisor", "viewer", "--port", "0"]
        argv += ["--supervisor", self.supervisor_url]
        if self.settings:
            config = os.path.join(self.folder, f"viewer-{id(self):x}.toml")
            with open(config, "w") as handle:
                for key, value in self.settings.items():
                    handle.write(f"{key} = {value!r}\n")
            argv += ["--config", config]
        env = child_env(
            FORKWATCH_MESSAGE_QUEUE=self.queue_url, XDG_CONFIG_HOME=os.path.join(self.folder, "config")
        )
        self.proc, line = start_until(argv, env, "viewers:", self.lines, timeout)
        self.url = line.split()[1]
        self.port = int(self.url.rsplit(":", 1)[1].strip("/"))
        return self

    def feed(self):
        """The worker's feed as its /healthz tells it: {ok, text}."""
        with urllib.request.urlopen(self.url + "healthz", timeout=5) as answer:
            return json.loads(answer.read())["feed"]

    def wait_live(self, timeout=15.0):
        """Wait until the worker hears the supervisor through the queue."""
        wait_for(lambda: self.feed()["ok"], timeout, f"worker {self.url} to hear the supervisor")
        return self

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Stop the worker; its exit code (negative: the signal that ended it)."""
        code, self.proc = stop_process(self.proc, sig, timeout), None
        return code
