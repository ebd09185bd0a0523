"""Pages: the dashboard itself. The server renders the first state; JS applies diffs.

A page opened by a link on another site comes without the session cookie (it is
SameSite=Strict): answering it with a new session would overwrite the instructor's. Such
a navigation gets a page that reloads itself, without a cookie; the reload is this site's
own, so the browser sends the cookie with it.
"""

import segno
from flask import Blueprint, current_app, make_response, render_template, request

from supervisor.web.auth import INSTRUCTOR, PAGE_COOKIE
from supervisor.web.backend import backend_of

bp = Blueprint("views", __name__)
RELOAD_HERE = (
    '<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0">'
    "<title>forkwatch</title><p>Opening forkwatch…</p>"
)


@bp.before_app_request
def reload_cross_site_navigation():
    """A page navigation from another site without our cookie: reload it as our own."""
    if (
        request.method == "GET"
        and request.headers.get("Sec-Fetch-Site") == "cross-site"
        and request.headers.get("Sec-Fetch-Mode") == "navigate"
        and PAGE_COOKIE not in request.cookies
    ):
        return RELOAD_HERE, 200, {"Cache-Control": "no-store", "Content-Type": "text/html; charset=utf-8"}
    return None


@bp.get("/")
def index():
    backend = backend_of(current_app)
    token = request.args.get("token")
    if token is not None:
        return backend.login(token)
    visitor, cookies = backend.visitor()
    role = visitor["role"]
    join = current_app.config.get("FORKWATCH_JOIN")
    qr = (
        segno.make(join["viewer"], error="m").svg_inline(scale=5, dark="#111", light="#fff") if join else None
    )
    response = make_response(
        render_template(
            "index.html",
            role=role,
            is_instructor=role == INSTRUCTOR,
            csrf=visitor["csrf"],
            **backend.page(role),
            transports=list(backend.transports),
            join=join,
            qr=qr,
            token_error=visitor["token_error"],
            session_ended=visitor["session_ended"],
        )
    )
    for cookie in cookies:  # a worker's answer carries the session the supervisor made
        response.headers.add("Set-Cookie", cookie)
    return response


@bp.post("/logout")
def logout():
    return backend_of(current_app).logout()


def content_security_policy(frame_ancestors="'none'"):
    """The pages' policy: everything from the dashboard itself; framed by nobody, or by
    `frame_ancestors` (the replay page, which the stage shows in a frame of its own)."""
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self'; frame-src 'self'; frame-ancestors {frame_ancestors}; base-uri 'none'; "
        "form-action 'self'"
    )


# A page the dashboard's own stage may show in a frame (and no other site).
FRAMED_BY_THE_DASHBOARD = {
    "Content-Security-Policy": content_security_policy("'self'"),
    "X-Frame-Options": "SAMEORIGIN",
}


def security_headers(response):
    response.headers.setdefault("Content-Security-Policy", content_security_policy())
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response
