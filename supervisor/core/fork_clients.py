"""Groups of the lecture's looping fork client (servers.fork_client), spawned on demand.

Each batch is one process group (the first client leads it), recorded with the guard so
it cannot outlive the dashboard. Progress and exits are reported as timeline events and
as a `clients` event with the current groups. Each client's own lines (`client is
connected`, `client sleeps for 7 seconds`) are its server's clients console
(`client_output` events, the last CLIENT_LINES kept for a page that opens later); once it
says it is connected, its address is read from its socket, so the page and the timeline
pair it with the child that serves it (that child's peer).
"""

import collections
import logging
import os
import signal
import subprocess
import sys
import threading
import time

from supervisor.core.catalog import PROJECT_ROOT
from supervisor.core.process import CommandError
from supervisor.core.states import ServerState
from supervisor.proc.signals import signal_group
from supervisor.proc.sockets import address_towards
from supervisor.proc.stat import create_time_of

log = logging.getLogger(__name__)
CLIENT_LINES = 200
LINE_LIMIT = 2000
CONNECTED = "client is connected"


class ClientBatch:
    def __init__(self, batch_id, server, port):
        self.id = batch_id
        self.server = server
        self.port = port
        self.procs = []
        self.addresses = {}  # pid -> "host:port" of its connection
        self.pgid = None
        self.created = None
        self.spawning = True

    def alive(self):
        return [p for p in self.procs if p.poll() is None]

    def describe(self):
        return {
            "id": self.id,
            "server": self.server,
            "count": len(self.procs),
            "alive": len(self.alive()),
            "pids": [p.pid for p in self.procs],
            "clients": [
                {"pid": p.pid, "address": self.addresses.get(p.pid), "alive": p.poll() is None}
                for p in self.procs
            ],
        }


class ForkClients:
    def __init__(self, manager, limit=50):
        self.manager = manager
        self.limit = limit
        self._batches = {}
        self._next_id = 1
        self._lines = {}  # server -> deque of {pid, text}
        self._lock = threading.Lock()

    def describe(self):
        with self._lock:
            return [batch.describe() for batch in self._batches.values()]

    def lines(self):
        """{server: [{pid, text}]}: the last lines of each server's clients console."""
        with self._lock:
            return {server: list(lines) for server, lines in self._lines.items()}

    def _publish(self):
        self.manager.publish_clients(self.describe())

    def spawn(self, server_name, count):
        server = self.manager.get(server_name)
        if server.spec.client != "fork":
            raise CommandError(f"fork clients talk to the forking clock server, not {server_name}", 400)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= self.limit:
            raise CommandError(f"count must be a whole number from 1 to {self.limit}", 400)
        if server.state != ServerState.RUNNING:
            raise CommandError("the server is not running", 409)
        with self._lock:
            running = sum(len(b.alive()) for b in self._batches.values())
            if running + count > self.limit:
                raise CommandError(f"at most {self.limit} fork clients at once ({running} running)", 409)
            batch = ClientBatch(self._next_id, server_name, server.port)
            self._next_id += 1
            self._batches[batch.id] = batch
        threading.Thread(
            target=self._spawn, args=(batch, count), daemon=True, name=f"clients-{batch.id}"
        ).start()
        return {"batch": batch.id, "count": count}

    def _spawn(self, batch, count):
        argv = [sys.executable, "-m", "servers.fork_client", "--host", "127.0.0.1", "--port", str(batch.port)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("FORKWATCH_")}
        env["PYTHONUNBUFFERED"] = "1"
        self.manager.timeline(batch.server, "clients", f"starting {count} fork clients…")
        for index in range(count):
            try:
                # One process group for the batch (a group cannot span sessions, so it is
                # a new group in ours; the terminal's Ctrl-C goes only to its foreground group).
                group = {"process_group": 0 if batch.pgid is None else batch.pgid}
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=PROJECT_ROOT,
                    **group,
                )
            except OSError as exc:
                self.manager.timeline(batch.server, "error", f"could not start a fork client: {exc}")
                break
            with self._lock:
                batch.procs.append(proc)
                if batch.pgid is None:
                    batch.pgid = proc.pid
                    batch.created = create_time_of(proc.pid)
                    if batch.created is not None:
                        self.manager.guard.add(batch.pgid, batch.created)
            threading.Thread(target=self._wait, args=(batch, proc), daemon=True).start()
            if (index + 1) % 5 == 0 or index + 1 == count:
                self.manager.timeline(
                    batch.server, "clients", f"fork clients started: {index + 1} of {count}"
                )
                self._publish()
        with self._lock:
            batch.spawning = False
        self._end_if_finished(batch)

    def _wait(self, batch, proc):
        """Read the client's console to its end, then collect its exit."""
        with proc.stdout:
            for raw in iter(lambda: proc.stdout.readline(LINE_LIMIT), b""):
                self._on_line(batch, proc.pid, raw.decode("utf-8", "replace").rstrip("\r\n"))
        proc.wait()
        address = batch.addresses.get(proc.pid)
        if address:
            self.manager.narrator.client_gone(batch.server, address)
        self._end_if_finished(batch)
        self._publish()

    def _on_line(self, batch, pid, text):
        with self._lock:
            lines = self._lines.setdefault(batch.server, collections.deque(maxlen=CLIENT_LINES))
            lines.append({"pid": pid, "text": text})
        self.manager.publish_client_output(batch.server, pid, [text])
        if text == CONNECTED:
            address = address_towards(pid, batch.port)
            if address:
                with self._lock:
                    batch.addresses[pid] = address
                self.manager.narrator.client_connected(batch.server, address, pid)
                self._publish()

    def _end_if_finished(self, batch):
        with self._lock:
            finished = (
                not batch.spawning and not batch.alive() and self._batches.pop(batch.id, None) is not None
            )
        if finished:
            if batch.pgid is not None:
                self.manager.guard.remove(batch.pgid)
            self.manager.timeline(batch.server, "clients", f"fork client batch {batch.id} has ended")
            self._publish()

    def stop_all(self, timeout=3.0):
        with self._lock:
            batches = list(self._batches.values())
        stopped = 0
        for batch in batches:
            if batch.pgid is not None:
                signal_group(batch.pgid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for batch in batches:
            for proc in batch.procs:
                try:
                    proc.wait(max(0.01, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    signal_group(batch.pgid, signal.SIGKILL)
                    proc.wait()
                stopped += 1
        if batches:
            self.manager.timeline(None, "clients", f"stopped {stopped} fork clients")
        return {"stopped": stopped}
