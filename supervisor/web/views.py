"""Pages: the dashboard itself. The server renders the first state; JS applies diffs.

A page opened by a link on another site comes without the session cookie (it is
SameSite=Strict): answering it with a new session would overwrite the instructor's. Such
a navigation gets a page that reloads itself, without a cookie; the reload is this site's
own, so the browser sends the cookie with it.
"""

import segno
from flask import Blueprint, current_app, redirect, render_template, request, session

from supervisor.web.auth import (
    INSTRUCTOR,
    csrf_ok,
    ensure_session,
    leave_instructor_mode,
    login_with_token,
    revoked,
    session_role,
)

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
        and current_app.config["SESSION_COOKIE_NAME"] not in request.cookies
    ):
        return RELOAD_HERE, 200, {"Cache-Control": "no-store", "Content-Type": "text/html; charset=utf-8"}
    return None


@bp.get("/")
def index():
    token = request.args.get("token")
    if token is not None:
        if not login_with_token(token):
            session["token_error"] = True
        return redirect("/", code=303)  # the token never stays in the address bar
    ended = revoked()
    if ended:
        session.pop("role")
        session.pop("stamp", None)
    csrf = ensure_session()
    manager = current_app.extensions["forkwatch"]
    classroom = current_app.extensions["forkwatch_classroom"]
    role = session_role()
    join = current_app.config.get("FORKWATCH_JOIN")
    qr = (
        segno.make(join["viewer"], error="m").svg_inline(scale=5, dark="#111", light="#fff") if join else None
    )
    return render_template(
        "index.html",
        role=role,
        is_instructor=role == INSTRUCTOR,
        csrf=csrf,
        snapshot={
            **manager.snapshot(),
            "role": role,
            "clients": current_app.extensions["forkwatch_clients"].describe(),
            "client_lines": current_app.extensions["forkwatch_clients"].lines(),
            **classroom.snapshot(),
        },
        lesson=classroom.describe_lesson(),
        comparisons=classroom.comparisons.describe()["comparisons"],
        catalog=[spec.describe() for spec in manager.catalog.values()],
        mechanism=manager.mechanism,
        containment=manager.containment_text,
        join=join,
        qr=qr,
        token_error=session.pop("token_error", False),
        session_ended=ended,
    )


@bp.post("/logout")
def logout():
    """Leave instructor mode: a form POST with the page's CSRF token (a POST from another
    site, which has no token, changes nothing)."""
    if not csrf_ok():
        return "the CSRF token is missing or wrong; reload the page", 403, {"Content-Type": "text/plain"}
    leave_instructor_mode()
    return redirect("/", code=303)


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
