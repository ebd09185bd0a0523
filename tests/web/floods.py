"""What the flood tests drive a live dashboard with: a raw Socket.IO client over a WebSocket
(wsproto on a plain socket, so it can come from another loopback address, send any packet
and choose not to read), a /healthz prober, the dashboard's threads and memory, and an
app served over real HTTP in this process.

Every flood comes from 127.0.0.2 or above (all of 127/8 is this machine), the prober from
127.0.0.1: a limit per address must keep the prober answered.
"""

import contextlib
import http.client
import json
import socket
import threading
import time

import psutil
from wsproto import ConnectionType, WSConnection
from wsproto.events import CloseConnection, Ping, RejectConnection, Request, TextMessage

from supervisor.web.serving import DashboardServer
from tests.helpers import wait_for


class NotJoined(AssertionError):
    """The dashboard did not let this session join /live (in time)."""


class RawSocketIO:
    """One Engine.IO session over a WebSocket, joined to /live. `read=False` never reads
    (the kernel's buffers fill, then the dashboard's queue for it); `pong=True` answers the
    dashboard's pings blindly all the same, as a client that reads nothing could."""

    def __init__(self, port, source="127.0.0.2", token=None, rcvbuf=None, timeout=10.0, join_timeout=10.0):
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind((source, 0))
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.received = []  # texts, once the session is open
        self._partial = []  # the parts of a message not yet finished
        self.closed = False
        self.refused = None  # the handshake's answer when the dashboard refused it
        self._lock = threading.Lock()
        self._send(
            Request(
                host=f"127.0.0.1:{port}",
                target="/socket.io/?EIO=4&transport=websocket",
                extra_headers=[(b"origin", f"http://127.0.0.1:{port}".encode())],
            )
        )
        try:
            self._wait(
                lambda: any(t.startswith("0{") for t in self.received), "the open packet", join_timeout
            )
        except AssertionError as exc:
            self.close()
            raise NotJoined(f"{exc}; refused: {self.refused}") from None
        auth = json.dumps({"token": token}) if token else ""
        self.send(f"40/live,{auth}")
        try:
            self._wait(lambda: any(t.startswith("40/live,") for t in self.received), "/live", join_timeout)
        except AssertionError as exc:
            self.close()
            raise NotJoined(str(exc)) from None

    def _send(self, event):
        with self._lock:  # a reader thread answers pings while the test sends
            self.sock.sendall(self.ws.send(event))

    def send(self, text):
        self._send(TextMessage(data=text))

    def read_some(self, limit=1 << 20):
        """Read what has arrived (answering pings); False once the dashboard closed."""
        try:
            data = self.sock.recv(limit)
        except (TimeoutError, BlockingIOError):
            return True
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return False
        self.ws.receive_data(data)
        for event in self.ws.events():
            if isinstance(event, TextMessage):
                self._partial.append(event.data)  # wsproto hands a long message over in parts
                if not event.message_finished:
                    continue
                text, self._partial = "".join(self._partial), []
                self.received.append(text)
                if text == "2":
                    self.send("3")
            elif isinstance(event, Ping):
                self._send(event.response())
            elif isinstance(event, CloseConnection):
                self.closed = True
            elif isinstance(event, RejectConnection):
                self.refused = event.status_code
                self.closed = True
        return not self.closed

    def _wait(self, done, what, timeout=10.0):
        deadline = time.monotonic() + timeout
        self.sock.settimeout(min(timeout, self.sock.gettimeout()))
        while not done():
            if time.monotonic() > deadline or not self.read_some():
                raise AssertionError(f"no {what}; received {self.received[:5]}")

    def count(self, event):
        return sum(1 for t in self.received if t.startswith(f'42/live,["{event}"'))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Every:
    """A context manager that calls tick() every `every` seconds on a thread of its own."""

    def __init__(self, every):
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)

    def _run(self):
        while not self._stop.wait(self.every):
            self.tick()


class HealthProbe(Every):
    """GET /healthz from 127.0.0.1 every `every` seconds on a new connection, timing each."""

    def __init__(self, port, every=0.02):
        super().__init__(every)
        self.port = port
        self.ms = []
        self.failures = []

    def tick(self):
        began = time.monotonic()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            body = response.read()
            conn.close()
            if response.status != 200 or json.loads(body) != {"ok": True}:
                self.failures.append((response.status, body[:200]))
        except OSError as exc:
            self.failures.append(repr(exc))
            return
        self.ms.append((time.monotonic() - began) * 1000)

    def percentile(self, p):
        ordered = sorted(self.ms)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else None

    def p99(self):
        return self.percentile(99)

    def median(self):
        return self.percentile(50)

    def figures(self):
        return f"median {self.median():.1f} / p99 {self.p99():.1f} ms over {len(self.ms)} requests"


def baseline_p99(port, seconds=1.0):
    """/healthz's p99 on a quiet dashboard, in the same run (the machine's own noise)."""
    with HealthProbe(port) as probe:
        time.sleep(seconds)  # sampling for a while, not waiting for something
    return probe.p99()


@contextlib.contextmanager
def served(app):
    """The app served by the dashboard's own HTTP server on a free loopback port, in a
    thread of this process; yields the server (its `server_port`)."""
    server = DashboardServer("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def footprint(pid):
    """(threads, RSS in MiB) of the dashboard."""
    proc = psutil.Process(pid)
    return proc.num_threads(), proc.memory_info().rss / 1024 / 1024


class Footprint(Every):
    """The dashboard's threads and memory before a flood, its thread count's peak (sampled
    every 20 ms) while the flood lasts, and after."""

    def __init__(self, pid):
        super().__init__(0.02)
        self.pid = pid
        self.threads_before, self.rss_before = footprint(pid)
        self.peak = self.threads_before

    def tick(self):
        try:
            self.peak = max(self.peak, psutil.Process(self.pid).num_threads())
        except psutil.NoSuchProcess:
            return

    def settled(self, most_extra, timeout=15.0):
        """Assert the peak stayed within `most_extra` threads of before and the count came back;
        the figure for the report."""
        assert self.peak <= self.threads_before + most_extra, f"threads peaked at {self.peak}"
        wait_for(lambda: footprint(self.pid)[0] <= self.threads_before + 3, timeout, "threads back to before")
        threads, rss = footprint(self.pid)
        return (
            f"threads {self.threads_before} → peak {self.peak} → {threads}; "
            f"RSS {self.rss_before:.0f} → {rss:.0f} MiB"
        )
