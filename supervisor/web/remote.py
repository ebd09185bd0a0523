"""A viewer worker's backend: the supervisor, reached over its own JSON API.

The worker holds neither the instructor's token nor the cookie-signing key. Whatever a
browser asks that needs a role reaches the supervisor with that browser's own credentials
— its session cookie with the CSRF token the supervisor gave it, or the bearer token it
presented — and its address in `X-Forwarded-For`; the supervisor decides, as it does for
its own pages. A worker can therefore do no more than its callers can, and a role is
never widened on the way.

- `Supervisor`: the HTTP client (one connection a call; `/api/play` may take minutes).
- `RemoteBackend`: the backend interface (supervisor/web/backend.py) over it; snapshots
  for new connections go through the feed (supervisor/web/feed.py), which orders them
  with the events it relays.
- `RemoteCommands`: the instructor's commands as API calls.
"""

import http.client
import json
import threading
import time
import urllib.parse

from flask import request

from supervisor.core.process import CommandError
from supervisor.web.auth import VIEWER
from supervisor.web.backend import Caller

TIMEOUT = 10.0
PAGE_SNAPSHOT_AGE = 0.5  # pages rendered within this share one snapshot
PLAN_AGE = 5.0  # the catalogue, the lesson's plan and the comparisons


class Unreachable(CommandError):
    def __init__(self, why):
        super().__init__(f"the supervisor cannot be reached ({why})", 502)


def credentials(caller):
    """The headers that carry a caller's own credentials and address."""
    headers = {}
    if caller is None:
        return headers
    if caller.address:
        headers["X-Forwarded-For"] = caller.address
    if caller.token is not None:
        headers["Authorization"] = f"Bearer {caller.token}"
    if caller.cookie:
        headers["Cookie"] = caller.cookie
    if caller.csrf:
        headers["X-CSRF-Token"] = caller.csrf
    return headers


def fit_for_header(text):
    """A token as a browser may give it, fit to go into a header (else None): printable
    ASCII, no line breaks."""
    return (
        text if isinstance(text, str) and text.isascii() and text.isprintable() and len(text) < 512 else None
    )


class Supervisor:
    def __init__(self, url, timeout=TIMEOUT):
        parts = urllib.parse.urlsplit(url)
        self.url = url.rstrip("/")
        self.secure = parts.scheme == "https"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.secure else 80)
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout

    def open(self, method, path, body=None, headers=None, timeout=None):
        """Send one request; the response to read (its `connection` closes with it).
        Unreachable when no answer comes."""
        kind = http.client.HTTPSConnection if self.secure else http.client.HTTPConnection
        connection = kind(self.host, self.port, timeout=timeout or self.timeout)
        try:
            connection.request(method, self.prefix + path, body=body, headers=headers or {})
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise Unreachable(getattr(exc, "strerror", None) or exc.__class__.__name__) from None
        response.connection = connection
        return response

    def call(self, method, path, body=None, caller=None, timeout=None):
        """(status, JSON answer, Set-Cookie values) of one API call as `caller`."""
        headers = credentials(caller)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        response = self.open(method, path, data, headers, timeout)
        try:
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise Unreachable(exc.__class__.__name__) from None
        finally:
            response.connection.close()
        try:
            answer = json.loads(raw) if raw else None
        except ValueError:
            raise Unreachable(f"an answer that is not JSON, status {response.status}") from None
        return response.status, answer, response.headers.get_all("Set-Cookie") or []

    def answer(self, method, path, body=None, caller=None):
        """The API's answer; its refusal as a CommandError with the same sentence."""
        status, answer, _ = self.call(method, path, body, caller)
        if 200 <= status < 300:
            return answer
        if 400 <= status < 500 and isinstance(answer, dict) and "error" in answer:
            raise CommandError(answer["error"], status)
        raise Unreachable(f"status {status}")

    def snapshot(self):
        return self.answer("GET", "/api/snapshot")

    def healthy(self, timeout=1.0):
        try:
            status, answer, _ = self.call("GET", "/healthz", timeout=timeout)
        except Unreachable:
            return False
        return status == 200 and isinstance(answer, dict) and answer.get("ok") is True


class RemoteBackend:
    transports = ("websocket",)

    def __init__(self, supervisor, feed, forward):
        self.supervisor = supervisor
        self.feed = feed
        self.forward = forward  # relays a request to the supervisor as it came
        self._lock = threading.Lock()
        self._page_snapshot = (0.0, None)
        self._plan = (0.0, None)

    def caller(self, token):
        """In the Socket.IO connect handler: the handshake's cookie or the token given,
        checked by the supervisor. Refused (None) for a wrong token; a viewer when the
        supervisor cannot be asked (the page then says it is gone)."""
        address = request.remote_addr
        cookie = request.headers.get("Cookie")
        if token is not None and fit_for_header(token) is None:
            return None
        if token is None and not cookie:
            return Caller(VIEWER, address=address)
        asking = Caller(VIEWER, cookie=cookie, token=token, address=address)
        try:
            status, answer, _ = self.supervisor.call("GET", "/api/session", caller=asking)
        except Unreachable:
            return Caller(VIEWER, address=address)
        if status in (401, 403):
            return None
        if status == 429 and isinstance(answer, dict) and "error" in answer:
            raise CommandError(answer["error"], 429)  # this address may not try another token now
        if status != 200 or not isinstance(answer, dict):
            return Caller(VIEWER, address=address)
        return Caller(
            answer.get("role", VIEWER), cookie=cookie, csrf=answer.get("csrf"), token=token, address=address
        )

    def current(self, caller):
        """Always: the supervisor checks the forwarded credentials on every command, and
        refuses those of a session that has ended."""
        return True

    def visitor(self):
        asking = Caller(VIEWER, cookie=request.headers.get("Cookie"), address=request.remote_addr)
        try:
            status, answer, cookies = self.supervisor.call("GET", "/api/session", caller=asking)
        except Unreachable:
            status, answer, cookies = None, None, []
        if status != 200 or not isinstance(answer, dict):
            return {"role": VIEWER, "csrf": "", "token_error": False, "session_ended": False}, ()
        fields = ("role", "csrf", "token_error", "session_ended")
        return {name: answer.get(name, False) for name in fields}, cookies

    def login(self, token):
        return self.forward()

    def logout(self):
        return self.forward()

    def _recent(self, slot, age, fetch, fallback=None):
        """A value fetched at most `age` seconds ago, else fetched now; while the supervisor
        cannot be reached, the last one known (or `fallback()`)."""
        with self._lock:
            fetched, value = getattr(self, slot)
            if value is not None and time.monotonic() - fetched < age:
                return value
        try:
            value = fetch()
        except CommandError:
            value = value if value is not None or fallback is None else fallback()
            if value is None:
                raise
            return value
        with self._lock:
            setattr(self, slot, (time.monotonic(), value))
        return value

    def page(self, role):
        """The page's first state: a snapshot at most half a second old, else (the
        supervisor unreachable) the last one this worker had; 502 when it never had one."""
        snapshot = self._recent(
            "_page_snapshot", PAGE_SNAPSHOT_AGE, self.feed.fetch_snapshot, lambda: self.feed.last_snapshot
        )
        plan = self._recent("_plan", PLAN_AGE, self._fetch_plan)
        return {
            "snapshot": {**snapshot, "role": role, "feed": dict(self.feed.state)},
            **plan,
            "mechanism": snapshot.get("mechanism"),
            "containment": snapshot.get("containment"),
        }

    def _fetch_plan(self):
        """What changes only with the supervisor's configuration: the catalogue, the
        lesson's plan (where the lesson is comes with every snapshot) and the comparisons."""
        answer = self.supervisor.answer
        return {
            "catalog": answer("GET", "/api/catalog"),
            "lesson": answer("GET", "/api/lesson"),
            "comparisons": answer("GET", "/api/comparisons")["comparisons"],
        }

    def warm(self):
        """Fetch the page's first state once at start, so a page opened after the
        supervisor is gone still shows the last one known."""
        try:
            self.page(VIEWER)
        except CommandError:
            pass

    def send_snapshot(self, sid, role):
        self.feed.welcome(sid, role)

    def commands(self, caller):
        return RemoteCommands(self.supervisor, caller)


def _path(name):
    if not isinstance(name, str):
        raise CommandError(f"there is no server named {str(name)[:60]!r}", 404)
    return f"/api/servers/{urllib.parse.quote(name, safe='')}"


class RemoteCommands:
    """The instructor's commands, each the API call the page would make, as the caller."""

    def __init__(self, supervisor, caller):
        self.supervisor = supervisor
        self.caller = caller

    def _post(self, path, body=None):
        return self.supervisor.answer("POST", path, body if body is not None else {}, self.caller)

    def start(self, name, options):
        return self._post(f"{_path(name)}/start", {"options": options})

    def stop(self, name):
        return self._post(f"{_path(name)}/stop")

    def restart_later(self, name, options):
        return self._post(f"{_path(name)}/restart", {"options": options})

    def interrupt(self, name):
        return self._post(f"{_path(name)}/interrupt")

    def signal_process(self, pid, create_time, signame):
        if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
            raise CommandError("pid must be a positive whole number", 400)
        return self._post(f"/api/processes/{pid}/signal", {"signal": signame, "create_time": create_time})

    def kill_children(self, name, signame):
        return self._post(f"{_path(name)}/kill-children", {"signal": signame})

    def send_stdin(self, name, line):
        return self._post(f"{_path(name)}/stdin", {"line": line})

    def set_focus(self, pid):
        return self._post("/api/focus", {"pid": pid})

    def check(self, name):
        return self._post(f"{_path(name)}/check")

    def stop_everything(self):
        return self._post("/api/stop-all")
