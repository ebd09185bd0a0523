"""Engine.IO sessions kept within bounds, below Socket.IO.

python-socketio registers three Engine.IO handlers (connect, message, disconnect); this
module puts itself in front of each, so that:

- every message passes the room's rate limits (per session and per address) before it is
  even decoded; past them it is dropped and counted, and a session that keeps flooding
  is cut off;
- a packet python-socketio cannot take (bad JSON, nested past the recursion limit, an
  event without a name) ends its session with one log line, not a traceback; so does
  binary data, which /live never uses (its attachments would be held until complete);
- a sweep twice a second ends sessions that never joined /live within
  `unused_session_timeout`, and those whose queue of messages not yet sent passes
  `outbox_messages` or `outbox_bytes` (a client that reads nothing while everything is
  queued for it); a WebSocket's connection is shut down at once, so its threads end.

Sessions are also counted here (per address and in total) for the handshake cap.
"""

import dataclasses
import logging
import socket
import threading
import time

from supervisor.web.room import FLOODING

log = logging.getLogger(__name__)
SWEEP_EVERY = 0.5


@dataclasses.dataclass
class Session:
    address: str
    born: float
    connection: socket.socket | None = None  # the WebSocket's TCP connection, once known
    ended: bool = False


class SessionKeeper:
    def __init__(self, socketio, room, settings, namespace):
        self.server = socketio.server
        self.eio = self.server.eio
        self.room = room
        self.namespace = namespace
        self.unused_after = settings["unused_session_timeout"]
        self.outbox_messages = settings["outbox_messages"]
        self.outbox_bytes = settings["outbox_bytes"]
        self._sessions = {}  # Engine.IO sid -> Session
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._socketio = {name: self.eio.handlers[name] for name in ("connect", "message", "disconnect")}
        self.eio.on("connect", self._connect)
        self.eio.on("message", self._message)
        self.eio.on("disconnect", self._disconnect)

    # --- in front of python-socketio's handlers ------------------------------------------

    def _connect(self, sid, environ):
        websocket = environ.get("HTTP_UPGRADE", "").lower() == "websocket"
        session = Session(
            environ.get("REMOTE_ADDR", "?"),
            time.monotonic(),
            environ.get("werkzeug.socket") if websocket else None,
        )
        with self._lock:
            self._sessions[sid] = session
        self.room.count("sessions")
        return self._socketio["connect"](sid, environ)

    def _message(self, sid, data):
        session = self._sessions.get(sid)
        if session is None or session.ended:
            return
        if not isinstance(data, str) or data.startswith(("45", "46")):
            self.end(sid, "sent binary data, which /live does not take", "cut_off_malformed")
            return
        verdict = self.room.admit_message(sid, session.address)
        if verdict == FLOODING:
            self.end(sid, "sends messages far faster than it may", "cut_off_flooding")
        if verdict is not None:
            return
        try:
            self._socketio["message"](sid, data)
        except (ValueError, RecursionError, IndexError, KeyError, TypeError) as exc:
            # python-socketio's own decoding of an odd packet; /live's handlers answer
            # their errors themselves and never raise these
            self.end(
                sid, f"sent a packet that is not Socket.IO ({exc.__class__.__name__})", "cut_off_malformed"
            )

    def _disconnect(self, sid, reason=None):
        with self._lock:
            self._sessions.pop(sid, None)
        self.room.forget_session(sid)
        return self._socketio["disconnect"](sid, reason)

    # --- what the front door asks -------------------------------------------------------

    def upgraded(self, sid, connection):
        """A polling session moved to a WebSocket on this TCP connection."""
        with self._lock:
            session = self._sessions.get(sid)
            if session is not None:
                session.connection = connection

    def refusal(self, address):
        """The sentence refusing one more session from address, or None."""
        with self._lock:
            total = len(self._sessions)
            mine = sum(1 for s in self._sessions.values() if s.address == address)
        return self.room.full(total, mine, "session")

    def open_sessions(self):
        with self._lock:
            return len(self._sessions)

    # --- the sweep ----------------------------------------------------------------------

    def run(self):
        while not self._stop.wait(SWEEP_EVERY):
            try:
                self.sweep()
            except Exception:  # the sweep must outlive any one odd session
                log.exception("the Engine.IO session sweep failed")

    def close(self):
        self._stop.set()

    def sweep(self):
        now = time.monotonic()
        for sid, sock in list(self.eio.sockets.items()):
            session = self._sessions.get(sid)
            if session is None or session.ended or sock.closed:
                continue
            joined = self.server.manager.sid_from_eio_sid(sid, self.namespace) is not None
            if not joined and now - session.born > self.unused_after:
                self.end(sid, f"never joined {self.namespace} in {self.unused_after:g} s", "ended_unused")
                continue
            waiting = sock.queue.qsize()
            if waiting > self.outbox_messages:
                self.end(sid, f"reads nothing: {waiting} messages wait for it", "cut_off_not_reading")
            elif waiting > 64 and (size := queued_bytes(sock.queue)) > self.outbox_bytes:
                self.end(sid, f"reads nothing: {size / 1048576:.1f} MiB wait for it", "cut_off_not_reading")

    def end(self, sid, why, counted):
        """End a session now: Socket.IO's disconnect runs, its queue is let go, and a
        WebSocket's connection is shut down (a writer blocked on it returns at once)."""
        with self._lock:
            session = self._sessions.get(sid)
            if session is None or session.ended:
                return
            session.ended = True
        log.warning("the client at %s %s; disconnected", session.address, why)
        self.room.count(counted)
        sock = self.eio.sockets.get(sid)
        if sock is not None:
            sock.close(wait=False, abort=True)
            self.eio.sockets.pop(sid, None)
        if session.connection is not None:
            try:
                session.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def queued_bytes(queue):
    """The size of the Engine.IO packets waiting in a socket's queue."""
    with queue.mutex:
        packets = list(queue.queue)
    return sum(len(p.data) for p in packets if p is not None and isinstance(p.data, str | bytes))
