"""The JSON API. Every answer is JSON; every error is {"error": "<sentence>"} with a 4xx."""

from flask import Blueprint, current_app, jsonify, request, session
from werkzeug.exceptions import HTTPException

from supervisor.core.process import CommandError
from supervisor.web.auth import (
    INSTRUCTOR,
    bearer_token,
    csrf_required,
    current_role,
    instructor_required,
    page_visitor,
)
from supervisor.web.backend import backend_of
from supervisor.web.play import play as play_once

bp = Blueprint("api", __name__)


def manager():
    return current_app.extensions["forkwatch"]


def body():
    """The request's JSON object ({} when there is no body)."""
    if not request.get_data(cache=True):
        return {}
    try:
        data = request.get_json(silent=True)
    except RecursionError:
        raise CommandError("the body is nested too deeply", 400) from None
    if not isinstance(data, dict):
        raise CommandError("the body must be a JSON object", 400)
    return data


def field(data, name, kind, default=None, required=False):
    value = data.get(name, default)
    if value is None and not required:
        return default
    if value is None or isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        raise CommandError(f"{name} must be {_kind_words(kind)}", 400)
    return value


def whole_number(text):
    """int(text) for a query value of ASCII digits only, else None ("²" and "①" are
    digits to str.isdigit(), not to int())."""
    if text.isascii() and text.isdigit():
        return int(text)
    return None


def _kind_words(kind):
    names = {int: "a whole number", str: "text", dict: "an object", bool: "true or false", list: "a list"}
    if isinstance(kind, tuple):
        return "a number"
    return names.get(kind, kind.__name__)


@bp.errorhandler(CommandError)
def command_error(exc):
    return jsonify({"error": exc.message}), exc.status


@bp.get("/healthz")
def healthz():
    return jsonify({"ok": True})


@bp.get("/api/session")
def session_of_caller():
    """Who the caller is, as the page would know it: {role, csrf, token_error,
    session_ended} (a viewer worker asks this with its browser's own cookie or token); 403
    for a wrong token, 429 while the caller's address may not try another."""
    role = current_role()
    if role is None:
        raise CommandError("the token is wrong", 403)
    if bearer_token() is not None:
        return jsonify({"role": role, "csrf": None, "token_error": False, "session_ended": False})
    return jsonify(page_visitor())


@bp.get("/api/snapshot")
def snapshot():
    """What /live sends a new connection (less its role): a viewer worker's snapshot."""
    return jsonify(backend_of(current_app).snapshot())


@bp.get("/api/room")
def room():
    """What the room's limits have seen: connections, sessions, messages accepted and
    dropped, clients cut off, wrong tokens (supervisor/web/room.py)."""
    return jsonify(
        {
            **current_app.extensions["forkwatch_room"].figures(),
            "open_sessions": current_app.extensions["forkwatch_sessions"].open_sessions(),
        }
    )


@bp.get("/api/servers")
def list_servers():
    return jsonify(manager().list_servers())


@bp.get("/api/catalog")
def catalog():
    return jsonify([spec.describe() for spec in manager().catalog.values()])


@bp.get("/api/servers/<name>")
def server_detail(name):
    return jsonify(manager().server_detail(name))


@bp.get("/api/servers/<name>/zombies")
def zombies(name):
    """The server's zombies ({pid, ppid, create_time} each): the snapshot and the page
    fold many into a count, and show their PIDs from here when asked."""
    return jsonify(manager().zombies(name))


@bp.post("/api/servers/<name>/start")
@instructor_required
def start(name):
    options = field(body(), "options", dict, default={})
    return jsonify(manager().start(name, options))


@bp.post("/api/servers/<name>/stop")
@instructor_required
def stop(name):
    return jsonify(manager().stop(name))


@bp.post("/api/servers/<name>/restart")
@instructor_required
def restart(name):
    options = field(body(), "options", dict)
    return jsonify(manager().restart_later(name, options)), 202


@bp.post("/api/servers/<name>/interrupt")
@instructor_required
def interrupt(name):
    return jsonify(manager().interrupt(name))


@bp.post("/api/stop-all")
@instructor_required
def stop_all():
    return jsonify(backend_of(current_app).commands(None).stop_everything())


@bp.post("/api/focus")
@instructor_required
def focus():
    """Show the class a process's code pane: {"pid": N}, or {"pid": null} to stop (as the
    Socket.IO `focus` event)."""
    return jsonify(manager().set_focus(field(body(), "pid", int)))


@bp.post("/api/servers/<name>/check")
@instructor_required
def check(name):
    """Run the exercise's checks against the server: 202 at once; each check's result
    comes as a `check` event, the whole run from GET …/check."""
    return jsonify(manager().check(name)), 202


@bp.get("/api/servers/<name>/check")
def check_summary(name):
    return jsonify(manager().check_summary(name))


@bp.post("/api/servers/<name>/kill-children")
@instructor_required
def kill_children(name):
    signame = field(body(), "signal", str, default="SIGKILL")
    return jsonify(manager().kill_children(name, signame))


@bp.post("/api/processes/<int:pid>/signal")
@instructor_required
def signal_process(pid):
    data = body()
    signame = field(data, "signal", str, default="SIGTERM")
    created = field(data, "create_time", (int, float), required=True)
    return jsonify(manager().signal_process(pid, created, signame))


@bp.get("/api/processes/<int:pid>/stack")
def stack(pid):
    """The Python stack of a managed process: anyone may look (rate-limited per browser
    session and address); local variables, which may hold a game's secret, and the code
    lines outside the lecture programs only for the instructor."""
    role = current_role()
    if role is None:
        raise CommandError("the token is wrong", 403)
    with_locals = request.args.get("locals", "0") not in ("0", "", "false")
    if with_locals and role != INSTRUCTOR:
        raise CommandError("local variables are for the instructor's eyes (they may hold a secret)", 403)
    limiter = current_app.extensions["forkwatch_stack_limiter"]
    keys = (f"session:{session.get('sid', '-')}", f"addr:{request.remote_addr}")
    if not all(limiter.allow(key) for key in keys):
        raise CommandError(f"slow down: at most {limiter.rate:g} stack reads a second", 429)
    return jsonify(manager().stack(pid, with_locals, every_line=role == INSTRUCTOR))


@bp.get("/api/servers/<name>/output")
def output(name):
    tail = whole_number(request.args.get("tail", "200"))
    if tail is None or not 1 <= tail <= 5000:
        raise CommandError("tail must be a whole number from 1 to 5000", 400)
    return jsonify(manager().output(name, tail))


@bp.post("/api/servers/<name>/stdin")
@instructor_required
def stdin(name):
    line = field(body(), "line", str, required=True)
    return jsonify(manager().send_stdin(name, line))


@bp.post("/api/servers/<name>/secret")
@instructor_required
def reveal_secret(name):
    return jsonify(manager().reveal_secret(name))


@bp.post("/api/servers/<name>/new-round")
@instructor_required
def new_round(name):
    return jsonify(manager().new_round_later(name)), 202


@bp.get("/api/events")
def events():
    after = whole_number(request.args.get("after", "0"))
    if after is None:
        raise CommandError("after must be an event id (a whole number)", 400)
    return jsonify(manager().events_after(after))


@bp.post("/api/servers/<name>/clients")
@instructor_required
def spawn_clients(name):
    count = field(body(), "count", int, required=True)
    return jsonify(current_app.extensions["forkwatch_clients"].spawn(name, count)), 202


@bp.post("/api/clients/stop")
@instructor_required
def stop_clients():
    return jsonify(current_app.extensions["forkwatch_clients"].stop_all())


@bp.post("/api/play/<name>")
@csrf_required
def play(name):
    return jsonify(play_once(current_app, name, body()))


def json_errors(app):
    """Every HTTP error under /api (and everywhere for JSON callers) as one JSON shape."""

    @app.errorhandler(HTTPException)
    def http_error(exc):
        if request.path.startswith("/api/") or request.path == "/healthz" or request.is_json:
            words = {
                404: "there is no such route",
                405: "that method is not allowed here (actions are POST)",
                413: "the request body is too large",
            }
            return jsonify({"error": words.get(exc.code, exc.description)}), exc.code
        return exc

    @app.errorhandler(CommandError)
    def command_error_anywhere(exc):
        return jsonify({"error": exc.message}), exc.status
