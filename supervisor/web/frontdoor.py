"""The front door: a WSGI layer in front of the pages, the API and Socket.IO alike.

- The Host header must name this dashboard: its bound address, localhost, the addresses
  the Join panel shows (this machine's LAN addresses when it listens beyond loopback) or
  a `--public-host` (a reverse proxy's name). Anything else is answered 400: a page on
  another site whose name resolves to 127.0.0.1 (DNS rebinding) reads nothing.
- A Socket.IO handshake past the room's session limits (open sessions in total and per
  address: 503; new sessions a second per address: 429) is answered with a sentence
  before Engine.IO makes a session for it.
- A polling session upgrading to a WebSocket tells the session keeper its connection.
"""

import ipaddress
import json
import time
import urllib.parse

from supervisor.proc.host import lan_addresses

LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
WIDE = ("0.0.0.0", "::", "")
LAN_REFRESH = 5.0  # seconds between re-reads of this machine's addresses


class HostNames:
    """The host names this dashboard answers to."""

    def __init__(self, bound, public=()):
        self.wide = bound in WIDE
        self.fixed = {_canonical(name) for name in (*LOCAL_NAMES, *public, *(() if self.wide else (bound,)))}
        self._lan = set()
        self._lan_read = None

    def allows(self, name):
        name = _canonical(name)
        if name in self.fixed:
            return True
        if not self.wide:
            return False
        if self._lan_read is None or time.monotonic() - self._lan_read > LAN_REFRESH:
            self._lan = {_canonical(a) for a in lan_addresses()}  # an address the machine got since
            self._lan_read = time.monotonic()
        return name in self._lan


def _canonical(name):
    name = name.strip().lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(name.strip("[]")))
    except ValueError:
        return name


def host_of(header):
    """The name in a Host header, without its port: 'a.b:5000' -> 'a.b', '[::1]:5000' -> '::1'."""
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class FrontDoor:
    def __init__(self, app, hosts, sessions, socketio_path="socket.io"):
        self.app = app
        self.hosts = hosts
        self.sessions = sessions
        self.prefix = f"/{socketio_path}/"

    def __call__(self, environ, start_response):
        header = environ.get("HTTP_HOST")
        if header is not None and not self.hosts.allows(host_of(header)):
            name = host_of(header)[:80]
            return _answer(
                start_response,
                "400 Bad Request",
                f"this dashboard does not answer to the host name {name!r}; use its address, "
                f"or start it with --public-host {name} if that name is yours",
            )
        if environ.get("PATH_INFO", "").startswith(self.prefix):
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            sid = query.get("sid", [None])[0]
            if sid is None:
                address = environ.get("REMOTE_ADDR", "?")
                refusal = self.sessions.refusal(address)
                if refusal is not None:
                    return _answer(start_response, "503 Service Unavailable", refusal)
                refusal = self.sessions.room.session_too_soon(address)
                if refusal is not None:
                    return _answer(start_response, "429 Too Many Requests", refusal)
            elif environ.get("HTTP_UPGRADE", "").lower() == "websocket":
                self.sessions.upgraded(sid, environ.get("werkzeug.socket"))
        return self.app(environ, start_response)


def _answer(start_response, status, sentence):
    body = json.dumps({"error": sentence}).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    if status.startswith(("503", "429")):
        headers.append(("Retry-After", "5"))
    start_response(status, headers)
    return [body]
