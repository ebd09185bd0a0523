"""Socket.IO namespace /live: a snapshot on connect, then every event as it happens.

Viewers and the instructor get the same stream. Control events (start, stop, restart,
interrupt, kill, kill_children, stdin, stop_all, focus) check the role on every call and
answer through the ack: {ok, error, result}.
"""

import logging

from flask import current_app, request
from flask_socketio import Namespace, emit

from supervisor.core.process import CommandError
from supervisor.web.auth import INSTRUCTOR, session_role, tokens_match

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
    "stage",
    "lesson",
    "compare",
)


class LiveNamespace(Namespace):
    def __init__(self, namespace, app):
        super().__init__(namespace)
        self.app = app
        self.roles = {}  # Socket.IO session id -> role

    # --- connection -----------------------------------------------------------------

    def on_connect(self, auth=None):
        role = session_role()
        token = auth.get("token") if isinstance(auth, dict) else None
        if token is not None:
            if not tokens_match(token, current_app.config["FORKWATCH_TOKEN"]):
                return False  # a wrong token is refused, not silently demoted
            role = INSTRUCTOR
        self.roles[request.sid] = role
        snapshot = current_app.extensions["forkwatch"].snapshot()
        snapshot["role"] = role
        snapshot["clients"] = current_app.extensions["forkwatch_clients"].describe()
        snapshot["client_lines"] = current_app.extensions["forkwatch_clients"].lines()
        snapshot.update(current_app.extensions["forkwatch_classroom"].snapshot())
        emit("snapshot", snapshot)  # to this connection only
        return True

    def on_disconnect(self, reason=None):
        self.roles.pop(request.sid, None)

    # --- instructor commands ----------------------------------------------------------

    def _command(self, action):
        if self.roles.get(request.sid) != INSTRUCTOR:
            return {"ok": False, "error": "this needs the instructor's token", "result": None}
        try:
            return {"ok": True, "error": None, "result": action(current_app.extensions["forkwatch"])}
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
        clients = current_app.extensions["forkwatch_clients"]
        return self._command(lambda m: {**m.stop_all(), "clients": clients.stop_all()})


def fan_out(socketio):
    """A Manager subscriber that broadcasts each event to every connected browser."""

    def publish(kind, payload):
        if kind in BROADCAST:
            socketio.emit(kind, payload, namespace=NAMESPACE)

    return publish
