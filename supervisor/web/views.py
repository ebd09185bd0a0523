"""Pages: the dashboard itself. The server renders the first state; JS applies diffs."""

import segno
from flask import Blueprint, current_app, redirect, render_template, request, session

from supervisor.web.auth import INSTRUCTOR, ensure_session, login_with_token

bp = Blueprint("views", __name__)


@bp.get("/")
def index():
    token = request.args.get("token")
    if token is not None:
        if not login_with_token(token):
            session["token_error"] = True
        return redirect("/", code=303)  # the token never stays in the address bar
    csrf = ensure_session()
    manager = current_app.extensions["forkwatch"]
    classroom = current_app.extensions["forkwatch_classroom"]
    role = session.get("role", "viewer")
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
        join=join,
        qr=qr,
        token_error=session.pop("token_error", False),
    )


@bp.post("/logout")
def logout():
    session.clear()
    return redirect("/", code=303)


def security_headers(response):
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response
