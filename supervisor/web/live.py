"""Socket.IO namespace /live: a snapshot on connect, then every event as it happens.

Viewers and the instructor get the same stream. Control events (start, stop, restart,
interrupt, kill, kill_children, stdin, stop_all, focus, check) check the role on every
call, then the type of every field of their data, and answer through the ack: {ok, error,
result}. Who connects, the snapshot and the commands are the backend's
(supervisor/web/backend.py): the Manager here, or on a viewer worker the supervisor, to
which the caller's own credentials are forwarded.
"""

import logging

from flask import current_app, request
from flask_socketio import Namespace

from supervisor.core.process import CommandError
from supervisor.web.api import field
from supervisor.web.auth import INSTRUCTOR, VIEWER
from supervisor.web.backend import Caller, backend_of

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
    "check",
    "focus",
    "stage",
    "lesson",
    "compare",
)
COMMANDS = (
    "start",
    "stop",
    "restart",
    "interrupt",
    "kill",
    "kill_children",
    "stdin",
    "stop_all",
    "focus",
    "check",
)
RESERVED = ("connect", "disconnect")


class LiveNamespace(Namespace):
    def __init__(self, namespace, app):
        super().__init__(namespace)
        self.app = app
        self.callers = {}  # Socket.IO session id -> Caller (its role, and what a worker forwards)

    def trigger_event(self, event, *args):
        """Only the real connect and disconnect, and the commands, reach a handler: a
        client that sends `connect` (or any other name) as an event is refused, counted,
        and answered through its ack if it asked for one."""
        sid = args[0] if args else None
        if event in RESERVED and not self.server.manager.is_connected(sid, self.namespace):
            return super().trigger_event(event, *args)  # the connection itself opening or closing
        if event not in COMMANDS:
            self.app.extensions["forkwatch_room"].count("events_refused")
            if event in RESERVED:
                return refusal(f"{event!r} is reserved: it is not an event a client may send")
            return refusal(f"/live has no event {str(event)[:40]!r}; its events: {', '.join(COMMANDS)}")
        return super().trigger_event(event, *args)

    # --- connection -----------------------------------------------------------------

    def on_connect(self, auth=None):
        backend = backend_of(current_app)
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            caller = backend.caller(token)
        except CommandError as exc:  # this address may not try another token just now
            raise ConnectionRefusedError(exc.message) from None
        if caller is None:
            return False  # a wrong token is refused, not silently demoted
        self.callers[request.sid] = caller
        backend.send_snapshot(request.sid, caller.role)
        return True

    def on_disconnect(self, reason=None):
        self.callers.pop(request.sid, None)

    def connected_roles(self):
        """{sid: role} of the connections open now (a worker's resync sends each its snapshot)."""
        return {sid: caller.role for sid, caller in list(self.callers.items())}

    # --- instructor commands ----------------------------------------------------------

    def _command(self, event, data, action, data_optional=False):
        """Role check, then the payload's type checks and the backend's call, answered as
        {ok, error, result}. A refusal is a CommandError with its sentence; anything else
        is a bug of the dashboard, logged with its traceback and reported as one."""
        caller = self.callers.get(request.sid, Caller(VIEWER))
        if caller.role != INSTRUCTOR:
            return refusal("this needs the instructor's token")
        backend = backend_of(current_app)
        if not backend.current(caller):
            return refusal(
                "the instructor's session has ended (left, or a new token); connect again with the token"
            )
        try:
            if data is None and data_optional:
                data = {}
            elif not isinstance(data, dict):
                raise CommandError("the event's data must be an object", 400)
            return {"ok": True, "error": None, "result": action(backend.commands(caller), data)}
        except CommandError as exc:
            return refusal(exc.message)
        except Exception:
            log.exception("the %s event failed", event)
            return refusal("the dashboard failed to do that; its log says why")

    def on_start(self, data=None):
        return self._command(
            "start", data, lambda m, d: m.start(_name(d), field(d, "options", dict, default={}))
        )

    def on_stop(self, data=None):
        return self._command("stop", data, lambda m, d: m.stop(_name(d)))

    def on_restart(self, data=None):
        return self._command(
            "restart", data, lambda m, d: m.restart_later(_name(d), field(d, "options", dict))
        )

    def on_interrupt(self, data=None):
        return self._command("interrupt", data, lambda m, d: m.interrupt(_name(d)))

    def on_kill(self, data=None):
        return self._command(
            "kill",
            data,
            lambda m, d: m.signal_process(
                field(d, "pid", int, required=True),
                field(d, "create_time", (int, float), required=True),
                field(d, "signal", str, default="SIGTERM"),
            ),
        )

    def on_kill_children(self, data=None):
        return self._command(
            "kill_children",
            data,
            lambda m, d: m.kill_children(_name(d), field(d, "signal", str, default="SIGKILL")),
        )

    def on_stdin(self, data=None):
        return self._command(
            "stdin", data, lambda m, d: m.send_stdin(_name(d), field(d, "line", str, required=True))
        )

    def on_check(self, data=None):
        """Run the exercise's checks against a server: {name}; the results come as `check` events."""
        return self._command("check", data, lambda m, d: m.check(_name(d)))

    def on_focus(self, data=None):
        """Show the class a process's code pane: {pid} (and its server, for the record), or
        {pid: null} to stop."""
        return self._command("focus", data, lambda m, d: m.set_focus(field(d, "pid", int)))

    def on_stop_all(self, data=None):
        return self._command("stop_all", data, lambda m, d: m.stop_everything(), data_optional=True)


def refusal(error):
    return {"ok": False, "error": error, "result": None}


def _name(data):
    return field(data, "name", str, required=True)


def fan_out(socketio):
    """A Manager subscriber that broadcasts each event to every connected browser."""

    def publish(kind, payload):
        if kind in BROADCAST:
            socketio.emit(kind, payload, namespace=NAMESPACE)

    return publish
