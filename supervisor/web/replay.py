"""Recordings on the web: the list and replay pages, and their JSON API.

Everyone may list, replay and export recordings; only the instructor renames or deletes
one (Bearer token, or the session cookie with its CSRF token, as every control route).
When recording is off, every route says so and why.

- `GET /api/recordings` → `{"recordings": [{id, title, started, ended, duration, servers,
  forks, kills, recording}], "notice"}` (`notice`: a broken file moved aside at start)
- `GET /api/recordings/ID` → one of those
- `GET /api/recordings/ID/events?after=&until=&limit=&kind=` → `{"events": [{id, t, kind,
  payload}], "last", "more"}`: by event id, after < id ≤ until; `by=t` for times instead
- `GET /api/recordings/ID/state?t=` → the newest snapshot at or before t and the events
  after it up to t (what a replay shows at t)
- `PATCH /api/recordings/ID` `{"title"}` · `DELETE /api/recordings/ID` (instructor)
- `GET /api/recordings/ID/export?format=json|html` → a download: the JSON document, or a
  page that replays it offline
"""

import math
import time

from flask import Blueprint, current_app, jsonify, make_response, render_template, request, session

from supervisor.core.process import CommandError
from supervisor.web.api import body, field, whole_number
from supervisor.web.auth import INSTRUCTOR, ensure_session, instructor_required
from supervisor.web.replay_file import offline_page, page_state
from supervisor.web.views import FRAMED_BY_THE_DASHBOARD

bp = Blueprint("replay", __name__)
ID_DIGITS = 18  # SQLite's integers stop at 2**63 - 1


def _recording():
    return current_app.extensions["forkwatch_recording"]


def _store():
    recording = _recording()
    if recording.store is None:
        raise CommandError(f"recording is off: {recording.off}", 409)
    return recording.store


def recording_number(text):
    """A recording's id, or a position in one, as a whole number (at most ID_DIGITS ASCII
    digits), else None."""
    return whole_number(text) if len(text) <= ID_DIGITS else None


def recording_known(store):
    """known(name) for the stage: whether `name` is the id of a recording in `store`."""

    def known(name):
        number = recording_number(name)
        if number is None:
            return False
        try:
            store.get(number)
        except CommandError:
            return False
        return True

    return known


def _id(text):
    number = recording_number(text)
    if number is None:
        raise CommandError(f"there is no recording {text[:40]!r}", 404)
    return number


def _argument(name, parse, words, default=None):
    """The query argument `name` read by `parse` (None when it cannot be), else `default`."""
    text = request.args.get(name)
    if text is None or text == "":
        return default
    value = parse(text)
    if value is None:
        raise CommandError(f"{name} must be {words}", 400)
    return value


def _choice(name, choices, default):
    value = request.args.get(name, default)
    if value not in choices:
        raise CommandError(f"{name} must be {' or '.join(f'{choice!r}' for choice in choices)}", 400)
    return value


def _whole(name, default=None):
    return _argument(name, recording_number, "a whole number, 0 or more", default)


def _seconds(name, default=None):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            return None
        return value if math.isfinite(value) else None

    return _argument(name, parse, "a time in seconds since the epoch (as events' t)", default)


# --- the API --------------------------------------------------------------------------------


@bp.get("/api/recordings")
def list_recordings():
    return jsonify({"recordings": _store().list(), "notice": _recording().notice})


@bp.get("/api/recordings/<rid>")
def one_recording(rid):
    return jsonify(_store().get(_id(rid)))


@bp.get("/api/recordings/<rid>/events")
def recording_events(rid):
    store, recording_id = _store(), _id(rid)
    by = _choice("by", ("id", "t"), "id")
    bound = _whole if by == "id" else _seconds
    limit = _whole("limit", 1000)
    if limit < 1:
        raise CommandError("limit must be 1 or more", 400)
    kind = request.args.get("kind") or None
    events = store.events(
        recording_id, after=bound("after"), until=bound("until"), by=by, limit=limit, kind=kind
    )
    last = events[-1]["id"] if events else _whole("after", 0) if by == "id" else None
    return jsonify({"events": events, "last": last, "more": len(events) == limit})


@bp.get("/api/recordings/<rid>/state")
def recording_state(rid):
    store, recording_id = _store(), _id(rid)
    t = _seconds("t")
    if t is None:
        raise CommandError("t (a time in seconds since the epoch) is required", 400)
    return jsonify(store.state_at(recording_id, t))


@bp.patch("/api/recordings/<rid>")
@instructor_required
def rename_recording(rid):
    store, recording_id = _store(), _id(rid)
    title = field(body(), "title", str, required=True)
    return jsonify(store.rename(recording_id, title))


@bp.delete("/api/recordings/<rid>")
@instructor_required
def delete_recording(rid):
    store, recording_id = _store(), _id(rid)
    deleted = store.delete(recording_id)
    classroom = current_app.extensions.get("forkwatch_classroom")
    if classroom is not None:
        classroom.unstage("recording", str(recording_id))  # no page keeps showing what is gone
    return jsonify(deleted)


@bp.get("/api/recordings/<rid>/export")
def export_recording(rid):
    store, recording_id = _store(), _id(rid)
    kind = _choice("format", ("html", "json"), "json")
    document = store.export(recording_id)
    if kind == "json":
        response = jsonify(document)
    else:
        response = make_response(offline_page(document, _catalog()))
        response.mimetype = "text/html"
    name = f"forkwatch-recording-{recording_id}.{kind}"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _catalog():
    return current_app.extensions["forkwatch"].catalog


# --- the pages ------------------------------------------------------------------------------


def _page(template, status=200, **values):
    role = session.get("role", "viewer")
    values.setdefault("is_instructor", role == INSTRUCTOR)
    html = render_template(template, role=role, csrf=ensure_session(), **values)
    return html, status


@bp.get("/recordings")
def recordings_page():
    recording = _recording()
    found = recording.store.list() if recording.store is not None else []
    return _page("recordings.html", recordings=found, off=recording.off, notice=recording.notice)


@bp.get("/recordings/<rid>")
def replay_page(rid):
    recording = _recording()
    try:
        store = _store()
        meta = store.get(_id(rid))
    except CommandError as exc:
        error = None if recording.off else exc.message
        html, status = _page("recordings.html", exc.status, recordings=[], error=error, off=recording.off)
        return html, status, FRAMED_BY_THE_DASHBOARD  # on stage, its sentence shows in the frame
    latest = store.state_at(meta["id"], meta["ended"] or time.time())["snapshot"]
    cards, first = page_state(meta, latest and latest["state"], _catalog())
    html, status = _page(
        "replay.html",
        meta=meta,
        catalog=cards,
        snapshot=first,
        mechanism=first["mechanism"],
        can_edit=session.get("role") == INSTRUCTOR and not request.args.get("on_stage"),
        is_instructor=False,  # the cards of a replay have no controls
        on_stage=bool(request.args.get("on_stage")),
        offline=None,
    )
    return html, status, FRAMED_BY_THE_DASHBOARD


@bp.app_template_filter("recording_date")
def recording_date(t):
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


@bp.app_template_filter("recording_length")
def recording_length(seconds):
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
