"""What the page and /live ask of the dashboard, behind one interface with two
implementations: `LocalBackend` here, over the supervisor's own Manager (the one process,
or the supervisor of a hall), and `RemoteBackend` (supervisor/web/remote.py), a viewer
worker's link to that supervisor. The page's view and the Socket.IO namespace call only:

- `caller(token)`: who a Socket.IO connection is (a Caller), or None to refuse it (a
  CommandError while the address may not try another token);
- `current(caller)`: whether an instructor's connection still speaks for the instructor
  (not after a logout or a new token);
- `visitor()`: who the browser opening the page is — `({role, csrf, token_error,
  session_ended}, cookies)`, the cookies being what the answer must set;
- `login(token)`, `logout()`: the answers to `/?token=…` and `POST /logout`;
- `page(role)`: what the page renders first: its snapshot, the catalogue, the mechanism,
  the containment, the lesson's plan and the comparisons;
- `send_snapshot(sid, role)`: the snapshot a new connection gets;
- `commands(caller)`: the instructor's commands, carried out as that caller: `start`,
  `stop`, `restart_later`, `interrupt`, `signal_process`, `kill_children`, `send_stdin`,
  `set_focus`, `check` (the Manager's own names and arguments) and `stop_everything`.

The role is checked where the Manager is: here before each command (by the namespace and
the API's decorators), and on a worker by the supervisor, to which the worker forwards
the caller's own credentials.
"""

import dataclasses

from flask import redirect
from flask_socketio import emit

from supervisor.web.auth import (
    INSTRUCTOR,
    csrf_ok,
    instructor_stamp,
    leave_instructor_mode,
    page_visitor,
    session_role,
    token_is_right,
    token_login,
)


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who asks: the role known here (with the instructor's stamp when it was known, see
    supervisor/web/auth.py), and the credentials a worker forwards as they came (the
    session cookie and its CSRF token, or the bearer token) with the address."""

    role: str
    stamp: str | None = None
    cookie: str | None = None
    csrf: str | None = None
    token: str | None = None
    address: str | None = None


class LocalBackend:
    transports = ("websocket", "polling")

    def __init__(self, app, manager, clients, classroom, outbox=None):
        self.app = app
        self.manager = manager
        self.clients = clients
        self.classroom = classroom  # the stage, the lesson, the comparisons
        self.outbox = outbox  # with a message queue: its state is the pages' feed

    def snapshot(self):
        """What /live sends a new connection (less its role); also GET /api/snapshot."""
        snapshot = {
            **self.manager.snapshot(),
            "clients": self.clients.describe(),
            "client_lines": self.clients.lines(),
            **self.classroom.snapshot(),
        }
        if self.outbox is not None:
            snapshot["feed"] = dict(self.outbox.state)
        return snapshot

    def caller(self, token):
        role = session_role()
        if token is not None:
            if not token_is_right(token):
                return None  # a wrong token is refused, not silently demoted
            role = INSTRUCTOR
        return Caller(role, stamp=instructor_stamp() if role == INSTRUCTOR else None)

    def current(self, caller):
        return caller.stamp == instructor_stamp()

    def visitor(self):
        return page_visitor(), ()

    def login(self, token):
        token_login(token)
        return redirect("/", code=303)  # the token never stays in the address bar

    def logout(self):
        """A form POST with the page's CSRF token (a POST from another site, which has no
        token, changes nothing)."""
        if not csrf_ok():
            return "the CSRF token is missing or wrong; reload the page", 403, {"Content-Type": "text/plain"}
        leave_instructor_mode()
        return redirect("/", code=303)

    def page(self, role):
        return {
            "snapshot": {**self.snapshot(), "role": role},
            "catalog": [spec.describe() for spec in self.manager.catalog.values()],
            "mechanism": self.manager.mechanism,
            "containment": self.manager.containment_text,
            "lesson": self.classroom.describe_lesson(),
            "comparisons": self.classroom.comparisons.describe()["comparisons"],
        }

    def send_snapshot(self, sid, role):
        # to this connection only, and never through the queue: no worker has it
        emit("snapshot", {**self.snapshot(), "role": role}, to=sid, ignore_queue=True)

    def commands(self, caller):
        return ManagerCommands(self.manager, self.clients)


class ManagerCommands:
    """The instructor's commands, straight to the Manager (the caller's role was checked)."""

    def __init__(self, manager, clients):
        self.manager = manager
        self.clients = clients

    def start(self, name, options):
        return self.manager.start(name, options)

    def stop(self, name):
        return self.manager.stop(name)

    def restart_later(self, name, options):
        return self.manager.restart_later(name, options)

    def interrupt(self, name):
        return self.manager.interrupt(name)

    def signal_process(self, pid, create_time, signame):
        return self.manager.signal_process(pid, create_time, signame)

    def kill_children(self, name, signame):
        return self.manager.kill_children(name, signame)

    def send_stdin(self, name, line):
        return self.manager.send_stdin(name, line)

    def set_focus(self, pid):
        return self.manager.set_focus(pid)

    def check(self, name):
        return self.manager.check(name)

    def stop_everything(self):
        """Every server and every fork client (as POST /api/stop-all)."""
        return {**self.manager.stop_all(), "clients": self.clients.stop_all()}


def backend_of(app):
    return app.extensions["forkwatch_backend"]
