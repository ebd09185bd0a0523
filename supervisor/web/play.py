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

from supervisor.core import load
from supervisor.core.process import CommandError
from supervisor.core.states import STOPPED_STATES, ServerState

QUESTION = load.QUESTION
PATH_LIMIT = 200
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
                "text": load.transcript_text(data),
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
    return socket.create_connection(("127.0.0.1", server.port), timeout=timeout)


def _child_for(manager, server_name, local_port):
    """The forked child serving our connection (its peer is our local port)."""
    for info in manager.watcher.snapshot(server_name):
        if info.peer and info.peer.endswith(f":{local_port}"):
            return info.pid
    return None


def address_of(server):
    """Where a clock server listens, or listened last: after it ended, a real client still
    goes there (and is refused)."""
    protocol = "tcp" if server.spec.protocol == "http" else server.spec.protocol
    return load.Address(protocol, port=server.port, path=server.unix_path)


def ask_time(manager, server, who, timeout):
    """One question over the server's own transport; what a real client gets, refused or
    not, is the result."""
    address = address_of(server)
    asking = load.Asking(0, time.monotonic())
    child = []

    def find_child(sock):
        if server.spec.client != "fork":
            return
        local_port = sock.getsockname()[1]
        deadline = time.monotonic() + 1.0
        while not child and time.monotonic() < deadline:
            found = _child_for(manager, server.name, local_port)
            if found:
                child.append(found)
            else:
                time.sleep(0.01)
        delay = server.options.get("delay", 0)
        if child and delay:
            manager.timeline(
                server.name, "play", f"{who} is waiting for child {child[0]} ({delay:g} s delay)…"
            )

    load.ask(address, asking, timeout, on_connected=find_child)
    return {
        "server": server.name,
        "address": address.words,
        "transcript": asking.steps,
        "total_ms": round((asking.answered or 0) * 1000, 1),
        "answer": asking.answer,
        "outcome": asking.outcome,
        "child_pid": child[0] if child else None,
    }


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


def _path(data):
    path = data.get("path", "/")
    if not isinstance(path, str) or not path.startswith("/") or len(path) > PATH_LIMIT:
        raise CommandError(f"path must start with / and have at most {PATH_LIMIT} characters", 400)
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise CommandError("path must not contain control characters", 400)
    if ".." in path.split("/"):
        raise CommandError("path must not climb with ..", 400)
    return urllib.parse.quote(path, safe="/?&=%+:;,-._~!$'()*@")


def _play_web(manager, server, who, data, timeout):
    path = _path(data)
    result = fetch(server, path, timeout)
    return result, f"GET {path}: {result['status_line']}"


def _play_word(manager, server, who, data, timeout):
    word = _text(data, "word", WORD_LIMIT)
    result = fetch(server, "/" + urllib.parse.quote(word, safe=""), timeout)
    outcome = {200: "right" if "You found it" in result["body"] else "already found", 404: "wrong"}
    result["outcome"] = outcome.get(result["status"], "error")
    # a guess is shown to the room only once the round is over (as the number game's)
    shown = word if result["outcome"] in ("right", "already found") else "a word"
    return result, f"guessed {shown}: {result['outcome']}"


def _play_number(manager, server, who, data, timeout):
    guess = _text(data, "guess", 12)
    ex, answer = line_exchange(server, guess, timeout)
    shown = guess if answer in ("right", "secret found") else "a number"
    return ex.result(answer=answer, outcome=answer), f"guessed {shown}: {answer}"


def _play_swap(manager, server, who, data, timeout):
    text = _text(data, "text", TEXT_LIMIT)
    manager.timeline(server.name, "play", f"{who} is waiting for a swap partner…")
    ex, answer = line_exchange(server, f"{who}: {text}", timeout + float(server.options.get("timeout", 60)))
    partner, _, partner_text = answer.partition(": ")
    if answer in ("no partner",) or answer.startswith("error:"):
        partner, partner_text = None, answer
    result = ex.result(answer=answer, partner=partner, partner_text=partner_text)
    return result, f"swapped with {partner}" if partner else answer


def _play_clock(manager, server, who, data, timeout):
    result = ask_time(manager, server, who, timeout)
    return result, f"asked the time: {result['answer']}"


PLAYS = {
    "clock": _play_clock,
    "fork": _play_clock,
    "web": _play_web,
    "word": _play_word,
    "number": _play_number,
    "swap": _play_swap,
}


def play(app, name, data):
    """One exchange with a server on behalf of a browser: a running one, or a clock server
    that has run and ended (a real client would be refused, and so is this one)."""
    manager = app.extensions["forkwatch"]
    limiter = app.extensions["forkwatch_limiter"]
    keys = (f"session:{session.get('sid', '-')}", f"addr:{request.remote_addr}")
    if not all(limiter.allow(key) for key in keys):
        raise CommandError(f"slow down: at most {limiter.rate:g} requests a second", 429)
    server = manager.get(name)
    kind = server.spec.client
    if kind not in PLAYS:
        raise CommandError(f"{name} has no embedded client", 400)
    has_ended = kind in ("clock", "fork") and server.started_at and server.state in STOPPED_STATES
    if server.state != ServerState.RUNNING and not has_ended:
        raise CommandError(f"the server is not running ({name} is {server.state.name.lower()})", 409)
    who = _nickname(data)
    timeout = app.config["FORKWATCH"]["play_timeout"] + float(server.options.get("delay", 0))
    try:
        result, summary = PLAYS[kind](manager, server, who, data, timeout)
    except TimeoutError as exc:
        raise CommandError(f"{name} did not answer within {timeout:g} s", 504) from exc
    except OSError as exc:
        raise CommandError(f"could not talk to {name}: {exc.strerror or exc}", 502) from exc
    payload = {"server": name, "who": who, "summary": summary, "t": time.time()}
    if result.get("outcome") == "right":
        payload["found"] = True  # the finder's banner on every page
    manager.publish_play(payload)
    return result
