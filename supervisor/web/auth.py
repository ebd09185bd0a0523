"""Roles: viewers watch and play; the instructor controls.

- The instructor proves it once with `/?token=TOKEN`: that sets a signed session cookie
  (SameSite=Strict, HttpOnly) and redirects to `/`, so the token never stays on screen.
  Scripts send `Authorization: Bearer TOKEN` instead.
- Every browser session gets a CSRF token with the page; a POST authenticated by the
  cookie must echo it in `X-CSRF-Token`. Bearer calls need none (a browser never adds
  that header by itself).
- Tokens are compared in constant time.
"""

import functools
import hmac
import secrets

from flask import current_app, jsonify, request, session

INSTRUCTOR = "instructor"
VIEWER = "viewer"


def tokens_match(given, expected):
    if not isinstance(given, str) or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


def ensure_session():
    """Give this browser session its id (for rate limits) and CSRF token."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    if "sid" not in session:
        session["sid"] = secrets.token_urlsafe(12)
    return session["csrf"]


def login_with_token(token):
    if tokens_match(token, current_app.config["FORKWATCH_TOKEN"]):
        session.clear()
        session["role"] = INSTRUCTOR
        ensure_session()
        return True
    return False


def token_login(token):
    """`/?token=…`: the instructor's session, or a note for the page that the token was
    wrong (the page says so once)."""
    if not login_with_token(token):
        session["token_error"] = True


def page_visitor():
    """Who opens the page: {role, csrf, token_error}, the session made if there is none
    (also what GET /api/session answers a viewer worker asking on a browser's behalf)."""
    csrf = ensure_session()
    return {"role": session_role(), "csrf": csrf, "token_error": session.pop("token_error", False)}


def bearer_token():
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip()
    return None


def current_role():
    """The role of this request: the bearer token wins, then the session cookie."""
    token = bearer_token()
    if token is not None:
        return INSTRUCTOR if tokens_match(token, current_app.config["FORKWATCH_TOKEN"]) else None
    return session.get("role", VIEWER)


def session_role():
    """The role from the session cookie alone (Socket.IO connections)."""
    return session.get("role", VIEWER)


def _error(message, status):
    response = jsonify({"error": message})
    response.status_code = status
    return response


def csrf_ok():
    if bearer_token() is not None:
        return True
    expected = session.get("csrf")
    return bool(expected) and tokens_match(request.headers.get("X-CSRF-Token", ""), expected)


def instructor_required(view):
    """Control routes: the instructor's token (Bearer) or session cookie plus CSRF token."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        role = current_role()
        if role is None:
            return _error("the token is wrong", 403)
        if role != INSTRUCTOR:
            return _error("this needs the instructor's token", 401)
        if not csrf_ok():
            return _error("the CSRF token is missing or wrong; reload the page", 403)
        return view(*args, **kwargs)

    wrapped.instructor_only = True
    return wrapped


def csrf_required(view):
    """Routes viewers may POST to: a session with its CSRF token, or the bearer token."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if current_role() is None:
            return _error("the token is wrong", 403)
        if not csrf_ok():
            return _error("the CSRF token is missing or wrong; reload the page", 403)
        return view(*args, **kwargs)

    return wrapped
