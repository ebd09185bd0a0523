"""Socket.IO namespace /live: a snapshot on connect, then every event as it happens.

Viewers and the instructor get the same stream. Control events (start, stop, restart,
interrupt, kill, kill_children, stdin, stop_all, focus) check the role on every call and
answer through the ack: {ok, error, result}. Who connects, the snapshot and the commands
are the backend's (supervisor/web/backend.py): the Manager here, or on a viewer worker
the supervisor, to which the caller's own credentials are forwarded.
"""

import logging

from flask import current_app, request
from flask_socketio import Namespace

from supervisor.core.process import CommandError
from supervisor.web.auth import INSTRUCTOR
from supervisor.web.backend import backend_of

log = logging.getLogger(__name__)
NAMESPACE = "/live"
BROADCAST = (
    "server",
    "proc",
    "stats",
    "output",
    "event",
    "play",
    "clients",
    "client_output",
    "story",
    "focus",
)


class LiveNamespace(Namespace):
    def __init__(self, namespace, app):
        super().__init__(namespace)
        self.app = app
        self.roles = {}  # Socket.IO session id -> role
        self.callers = {}  # Socket.IO session id -> Caller (what a worker forwards)

    # --- connection -----------------------------------------------------------------

    def on_connect(self, auth=None):
        backend = backend_of(current_app)
        token = auth.get("token") if isinstance(auth, dict) else None
        caller = backend.caller(token)
        if caller is None:
            return False  # a wrong token is refused, not silently demoted
        self.roles[request.sid] = caller.role
        self.callers[request.sid] = caller
        backend.send_snapshot(request.sid, caller.role)
        return True

    def on_disconnect(self, reason=None):
        self.roles.pop(request.sid, None)
        self.callers.pop(request.sid, None)

    def connected_roles(self):
        """{sid: role} of the connections open now (a worker's resync sends each its snapshot)."""
        return dict(self.roles)

    # --- instructor commands ----------------------------------------------------------

    def _command(self, action):
        if self.roles.get(request.sid) != INSTRUCTOR:
            return {"ok": False, "error": "this needs the instructor's token", "result": None}
        commands = backend_of(current_app).commands(self.callers.get(request.sid))
        try:
            return {"ok": True, "error": None, "result": action(commands)}
        except CommandError as exc:
            return {"ok": False, "error": exc.message, "result": None}
        except (TypeError, ValueError, AttributeError, KeyError):
            return {"ok": False, "error": "the event's data is malformed", "result": None}

    def on_start(self, data=None):
        data = data if isinstance(data, dict) else {}
        return self._command(lambda m: m.start(data.get("name"), data.get("options") or {}))

    def on_stop(self, data=None):
        data = data if isinstance(data, dict) else {}
        return self._command(lambda m: m.stop(data.get("name")))

    def on_restart(self, data=None):
        data = data if isinstance(data, dict) else {}
        return self._command(lambda m: m.restart_later(data.get("name"), data.get("options")))

    def on_interrupt(self, data=None):
        data = data if isinstance(data, dict) else {}
        return self._command(lambda m: m.interrupt(data.get("name")))

    def on_kill(self, data=None):
        data = data if isinstance(data, dict) else {}
        return self._command(
            lambda m: m.signal_process(
                data.get("pid"), data.get("create_time"), data.get("signal", "SIGTERM")
            )
        )

    def on_kill_children(self, data=None):
        data = data if isinstance(data, dict) else {}
        return self._command(lambda m: m.kill_children(data.get("name"), data.get("signal", "SIGKILL")))

    def on_stdin(self, data=None):
        data = data if isinstance(data, dict) else {}
        return self._command(lambda m: m.send_stdin(data.get("name"), data.get("line")))

    def on_focus(self, data=None):
        """Show the class a process's code pane: {pid} (and its server, for the record), or
        {pid: null} to stop."""
        data = data if isinstance(data, dict) else {}
        return self._command(lambda m: m.set_focus(data.get("pid")))

    def on_stop_all(self, data=None):
        return self._command(lambda m: m.stop_everything())


def fan_out(socketio):
    """A Manager subscriber that broadcasts each event to every connected browser."""

    def publish(kind, payload):
        if kind in BROADCAST:
            socketio.emit(kind, payload, namespace=NAMESPACE)

    return publish
