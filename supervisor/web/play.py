"""The embedded clients' server side: a browser cannot open a raw socket, so the dashboard
talks to each lecture server on the user's behalf and returns the real exchange — the
bytes sent (the 25-byte question, padding and all), the bytes received, the timing, and
for the forking server the child that answered.

Viewers may play; each browser session (and each address) is rate-limited.
"""

import collections
import re
import socket
import threading
import time
import urllib.parse

from flask import request, session

from supervisor.core.process import CommandError
from supervisor.core.states import ServerState

QUESTION = b"What is the time?".ljust(25)
NICKNAME = re.compile(r"^[\w .\-]{1,24}$")
TEXT_LIMIT = 200
WORD_LIMIT = 40
RECEIVE_LIMIT = 64 * 1024


class RateLimiter:
    """At most `rate` requests in any one second per key: the times of a key's latest
    requests in a sliding window (a rate below 1 allows one request every 1/rate s)."""

    def __init__(self, rate, clock=time.monotonic):
        self.rate = rate
        self.count = max(1, int(rate))
        self.window = self.count / rate
        self._clock = clock
        self._recent = {}  # key -> deque of the times of its latest requests
        self._lock = threading.Lock()

    def allow(self, key):
        now = self._clock()
        with self._lock:
            recent = self._recent.setdefault(key, collections.deque(maxlen=self.count))
            while recent and now - recent[0] >= self.window:
                recent.popleft()
            if len(recent) >= self.count:
                return False
            recent.append(now)
            if len(self._recent) > 10_000:  # forget idle keys
                self._recent = {k: v for k, v in self._recent.items() if v and now - v[-1] < self.window}
            return True


def shown_bytes(data):
    """Bytes as the transcript shows them: printable ASCII as is, the rest escaped."""
    return data.decode("latin-1").encode("unicode_escape").decode("ascii").replace(" ", "·")


class Exchange:
    """A transcript being built: what was sent and received, with times."""

    def __init__(self, server, address):
        self.server = server
        self.address = address
        self.started = time.monotonic()
        self.steps = []

    def note(self, direction, data):
        self.steps.append(
            {
                "dir": direction,
                "bytes": len(data),
                "text": shown_bytes(data),
                "ms": round((time.monotonic() - self.started) * 1000, 1),
            }
        )

    def result(self, **extra):
        return {
            "server": self.server,
            "address": self.address,
            "transcript": self.steps,
            "total_ms": round((time.monotonic() - self.started) * 1000, 1),
            **extra,
        }


def _recv_until(sock, done, limit=RECEIVE_LIMIT):
    data = b""
    while not done(data) and len(data) < limit:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _connect(server, timeout):
    if server.spec.protocol == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(server.unix_path)
        return sock
    return socket.create_connection(("127.0.0.1", server.port), timeout=timeout)


def _child_for(manager, server_name, local_port):
    """The forked child serving our connection (its peer is our local port)."""
    for info in manager.watcher.snapshot(server_name):
        if info.peer and info.peer.endswith(f":{local_port}"):
            return info.pid
    return None


def ask_time(manager, server, who, timeout):
    if server.spec.protocol == "udp":
        ex = Exchange(server.name, f"udp://127.0.0.1:{server.port}")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout)
            sock.sendto(QUESTION, ("127.0.0.1", server.port))
            ex.note("sent", QUESTION)
            data, _ = sock.recvfrom(4096)
            ex.note("received", data)
        return ex.result(answer=data.decode("utf-8", "replace").strip())
    where = server.unix_path if server.spec.protocol == "unix" else f"127.0.0.1:{server.port}"
    ex = Exchange(server.name, where)
    child = None
    with _connect(server, timeout) as sock:
        if server.spec.protocol != "unix":
            local_port = sock.getsockname()[1]
            if server.spec.client == "fork":
                deadline = time.monotonic() + 1.0
                while child is None and time.monotonic() < deadline:
                    child = _child_for(manager, server.name, local_port)
                    if child is None:
                        time.sleep(0.01)
                delay = server.options.get("delay", 0)
                if child and delay:
                    manager.timeline(
                        server.name, "play", f"{who} is waiting for child {child} ({delay:g} s delay)…"
                    )
        sock.sendall(QUESTION)
        ex.note("sent", QUESTION)
        data = _recv_until(sock, lambda d: len(d) >= 25 or d.startswith(b"server busy\n"))
        ex.note("received", data)
    answer = data.decode("utf-8", "replace").strip()
    return ex.result(answer=answer, child_pid=child)


def fetch(server, path, timeout):
    """One real HTTP GET; returns status line, headers and body as text."""
    ex = Exchange(server.name, f"http://127.0.0.1:{server.port}{path}")
    request_bytes = (
        f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{server.port}\r\nUser-Agent: forkwatch\r\n\r\n".encode()
    )
    with _connect(server, timeout) as sock:
        sock.sendall(request_bytes)
        ex.note("sent", request_bytes)
        data = _recv_until(sock, lambda d: False)
        ex.note("received", data[:2000])
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0] if lines else ""
    parts = status_line.split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isascii() and parts[1].isdigit() else None
    headers = [line.split(":", 1) for line in lines[1:] if ":" in line]
    return ex.result(
        status=status,
        status_line=status_line,
        headers=[[k.strip(), v.strip()] for k, v in headers],
        body=body.decode("utf-8", "replace"),
        url=f"http://127.0.0.1:{server.port}{path}",
    )


def line_exchange(server, line, timeout):
    """Send one line, read one line back (swap, secret number)."""
    ex = Exchange(server.name, f"127.0.0.1:{server.port}")
    with _connect(server, timeout) as sock:
        data_out = line.encode("utf-8") + b"\n"
        sock.sendall(data_out)
        ex.note("sent", data_out)
        data = _recv_until(sock, lambda d: d.endswith(b"\n"))
        ex.note("received", data)
    return ex, data.decode("utf-8", "replace").rstrip("\n")


def _nickname(data):
    nickname = data.get("nickname", "someone")
    if not isinstance(nickname, str) or not NICKNAME.match(nickname.strip() or "x"):
        raise CommandError("a nickname is 1 to 24 letters, digits, spaces, dots or dashes", 400)
    return nickname.strip() or "someone"


def _text(data, name, limit):
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise CommandError(f"{name} must be non-empty text", 400)
    value = value.strip()
    if len(value) > limit:
        raise CommandError(f"{name} is too long ({limit} characters at most)", 400)
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise CommandError(f"{name} must not contain control characters", 400)
    return value


def play(app, name, data):
    """One exchange with a running server on behalf of a browser."""
    manager = app.extensions["forkwatch"]
    limiter = app.extensions["forkwatch_limiter"]
    keys = (f"session:{session.get('sid', '-')}", f"addr:{request.remote_addr}")
    if not all(limiter.allow(key) for key in keys):
        raise CommandError(f"slow down: at most {limiter.rate:g} requests a second", 429)
    server = manager.get(name)
    if server.spec.client is None:
        raise CommandError(f"{name} has no embedded client", 400)
    if server.state != ServerState.RUNNING:
        raise CommandError(f"the server is not running ({name} is {server.state.name.lower()})", 409)
    who = _nickname(data)
    timeout = app.config["FORKWATCH"]["play_timeout"] + float(server.options.get("delay", 0))
    kind = server.spec.client
    try:
        if kind in ("clock", "fork"):
            result = ask_time(manager, server, who, timeout)
            summary = f"asked the time: {result['answer']}"
        elif kind == "web":
            path = data.get("path", "/")
            if path not in ("/", "/test"):
                raise CommandError("path must be / or /test", 400)
            result = fetch(server, path, timeout)
            summary = f"GET {path}: {result['status_line']}"
        elif kind == "word":
            word = _text(data, "word", WORD_LIMIT)
            result = fetch(server, "/" + urllib.parse.quote(word, safe=""), timeout)
            outcome = {200: "right" if "You found it" in result["body"] else "already found", 404: "wrong"}
            result["outcome"] = outcome.get(result["status"], "error")
            summary = f"guessed a word: {result['outcome']}"
        elif kind == "number":
            guess = _text(data, "guess", 12)
            ex, answer = line_exchange(server, guess, timeout)
            result = ex.result(answer=answer)
            summary = f"guessed {guess}: {answer}"
        elif kind == "swap":
            text = _text(data, "text", TEXT_LIMIT)
            manager.timeline(name, "play", f"{who} is waiting for a swap partner…")
            ex, answer = line_exchange(
                server, f"{who}: {text}", timeout + float(server.options.get("timeout", 60))
            )
            partner, _, partner_text = answer.partition(": ")
            if answer in ("no partner",) or answer.startswith("error:"):
                partner, partner_text = None, answer
            result = ex.result(answer=answer, partner=partner, partner_text=partner_text)
            summary = f"swapped with {partner}" if partner else answer
        else:
            raise CommandError(f"{name} has no embedded client", 400)
    except TimeoutError as exc:
        raise CommandError(f"{name} did not answer within {timeout:g} s", 504) from exc
    except OSError as exc:
        raise CommandError(f"could not talk to {name}: {exc.strerror or exc}", 502) from exc
    payload = {"server": name, "who": who, "summary": summary, "t": time.time()}
    manager.publish_play(payload)
    return result
