"""A viewer worker's door to the supervisor: every request the worker does not answer
itself (the JSON API, plays, logging in and out, recordings, the lecture's source) goes to
the supervisor as it came — method, path, query, body — with the browser's credentials
and address, and its answer comes back as the supervisor gave it (status, cookies,
body, streamed). The worker serves the page, the static files and /live itself.

Only the headers that carry meaning across are passed, both ways; the supervisor sees its
own host name, and the browser's address in `X-Forwarded-For` (believed there because the
worker is a trusted proxy; supervisor/web/proxies.py).
"""

from flask import Blueprint, Response, current_app, jsonify, request

from supervisor.web.remote import Unreachable

bp = Blueprint("forward", __name__)
REQUEST_HEADERS = ("Cookie", "Authorization", "X-CSRF-Token", "Content-Type", "Accept", "Accept-Language")
RESPONSE_HEADERS = (
    "Content-Type",
    "Content-Length",
    "Content-Disposition",
    "Location",
    "Cache-Control",
    "Retry-After",
    "Content-Security-Policy",
    "X-Frame-Options",  # a replay page on stage may be framed by the dashboard's own page
    "ETag",
)
PLAY_TIMEOUT = 300.0  # a swap may wait its partner (60 s by default) on top of play_timeout
TIMEOUT = 30.0
CHUNK = 64 * 1024


def forward():
    """This request, answered by the supervisor."""
    supervisor = current_app.extensions["forkwatch_supervisor"]
    headers = {name: request.headers[name] for name in REQUEST_HEADERS if name in request.headers}
    headers["X-Forwarded-For"] = request.remote_addr or ""
    path = request.path + (f"?{request.query_string.decode('latin-1')}" if request.query_string else "")
    body = request.get_data() if request.method in ("POST", "PUT", "PATCH", "DELETE") else None
    timeout = PLAY_TIMEOUT if request.path.startswith("/api/play/") else TIMEOUT
    try:
        answer = supervisor.open(request.method, path, body, headers, timeout)
    except Unreachable as exc:
        return jsonify({"error": exc.message}), 502

    def chunks():
        try:
            while chunk := answer.read(CHUNK):
                yield chunk
        except OSError:
            return  # the supervisor went away mid-answer: the browser sees a short body
        finally:
            answer.connection.close()

    response = Response(chunks(), status=answer.status)
    for name in RESPONSE_HEADERS:
        if name in answer.headers:
            response.headers[name] = answer.headers[name]
    for cookie in answer.headers.get_all("Set-Cookie") or []:
        response.headers.add("Set-Cookie", cookie)
    return response


@bp.get("/healthz")
def healthz():
    """The worker's own health (a load balancer's check): its feed's state, and what its
    room's limits have seen (as the supervisor's GET /api/room)."""
    extensions = current_app.extensions
    room = {
        **extensions["forkwatch_room"].figures(),
        "open_sessions": extensions["forkwatch_sessions"].open_sessions(),
    }
    return jsonify({"ok": True, "worker": True, "feed": extensions["forkwatch_feed"].state, "room": room})


@bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def everything_else(rest):
    return forward()
