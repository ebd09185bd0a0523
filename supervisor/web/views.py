"""Pages: the dashboard itself. The server renders the first state; JS applies diffs."""

import segno
from flask import Blueprint, current_app, make_response, render_template, request

from supervisor.web.auth import INSTRUCTOR
from supervisor.web.backend import backend_of

bp = Blueprint("views", __name__)


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
        )
    )
    for cookie in cookies:  # a worker's answer carries the session the supervisor made
        response.headers.add("Set-Cookie", cookie)
    return response


@bp.post("/logout")
def logout():
    return backend_of(current_app).logout()


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
