"""Roles: viewers watch and play; the instructor controls.

- The instructor proves it once with `/?token=TOKEN`: that sets a signed session cookie
  (SameSite=Strict, HttpOnly) and redirects to `/`, so the token never stays on screen.
  Scripts send `Authorization: Bearer TOKEN` instead.
- Every browser session gets a CSRF token with the page; a POST authenticated by the
  cookie must echo it in `X-CSRF-Token`. Bearer calls need none (a browser never adds
  that header by itself).
- Tokens are compared in constant time, and wrong ones are counted per address: past the
  room's allowance (10, then one every 5 s) every attempt from there is refused with a 429
  before any comparison.
- An instructor's session carries a stamp: a generation kept server-side (in the config
  folder, so a restart keeps it) and a fingerprint of the token. Leaving instructor mode
  starts a new generation, and a new token has a new fingerprint: either way every cookie
  (and every Socket.IO connection) made before stops counting as the instructor's.
"""

import functools
import hmac
import os
import secrets

from flask import current_app, jsonify, request, session

from supervisor.core.config import persistent_secret
from supervisor.core.process import CommandError

INSTRUCTOR = "instructor"
VIEWER = "viewer"
PAGE_COOKIE = "forkwatch"  # the browser's session cookie, the supervisor's (a worker passes it on)


def tokens_match(given, expected):
    if not isinstance(given, str) or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


class Generation:
    """The generation of instructor sessions, kept in the config folder."""

    FILE = "session-generation"

    def __init__(self, folder):
        self.folder = folder
        self.value = persistent_secret(folder, self.FILE, 12)

    def renew(self):
        """A new generation: every instructor session stamped before is over."""
        path = os.path.join(self.folder, self.FILE)
        os.remove(path)
        self.value = persistent_secret(self.folder, self.FILE, 12)


def instructor_stamp():
    """What an instructor's session must carry now: the generation and the token's
    fingerprint (keyed by the cookie-signing key, so the cookie does not reveal the token)."""
    config = current_app.config
    mark = hmac.new(config["SECRET_KEY"].encode(), config["FORKWATCH_TOKEN"].encode(), "sha256")
    return f"{current_app.extensions['forkwatch_generation'].value}:{mark.hexdigest()[:16]}"


def token_is_right(given):
    """Compare a token someone gave with the instructor's, counting the wrong ones by
    address; CommandError (429) while that address may not try again."""
    room = current_app.extensions["forkwatch_room"]
    address = request.remote_addr or "?"
    if not room.may_try_token(address):
        raise CommandError("too many wrong tokens from your address; wait a minute before trying again", 429)
    if tokens_match(given, current_app.config["FORKWATCH_TOKEN"]):
        return True
    room.token_failed(address)
    return False


def ensure_session():
    """Give this browser session its id (for rate limits) and CSRF token."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    if "sid" not in session:
        session["sid"] = secrets.token_urlsafe(12)
    return session["csrf"]


def login_with_token(token):
    if token_is_right(token):
        session.clear()
        session["role"] = INSTRUCTOR
        session["stamp"] = instructor_stamp()
        ensure_session()
        return True
    return False


def token_login(token):
    """`/?token=…`: the instructor's session, or a note for the page that the token was
    wrong (the page says so once)."""
    if not login_with_token(token):
        session["token_error"] = True


def page_visitor():
    """Who opens the page: {role, csrf, token_error, session_ended}, the session made if
    there is none (also what GET /api/session answers a viewer worker asking on a
    browser's behalf). An instructor's session that was revoked becomes a viewer's, and
    the page says so once (`session_ended`)."""
    ended = revoked()
    if ended:
        session.pop("role")
        session.pop("stamp", None)
    csrf = ensure_session()
    return {
        "role": session_role(),
        "csrf": csrf,
        "token_error": session.pop("token_error", False),
        "session_ended": ended,
    }


def leave_instructor_mode():
    """Logout: when the instructor leaves, every instructor session made so far ends."""
    if session_role() == INSTRUCTOR:
        current_app.extensions["forkwatch_generation"].renew()
    session.clear()


def bearer_token():
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip()
    return None


def current_role():
    """The role of this request: the bearer token wins, then the session cookie."""
    token = bearer_token()
    if token is not None:
        return INSTRUCTOR if token_is_right(token) else None
    return session_role()


def session_role():
    """The role from the session cookie alone (also for Socket.IO connections): the
    instructor only while the session's stamp is the current one."""
    if session.get("role") == INSTRUCTOR and session.get("stamp") == instructor_stamp():
        return INSTRUCTOR
    return VIEWER


def revoked():
    """True for a session that was the instructor's before a logout or a new token."""
    return session.get("role") == INSTRUCTOR and session_role() != INSTRUCTOR


def _error(message, status):
    response = jsonify({"error": message})
    response.status_code = status
    return response


def csrf_ok():
    if bearer_token() is not None:
        return True
    expected = session.get("csrf")
    given = request.headers.get("X-CSRF-Token") or request.form.get("csrf", "")
    return bool(expected) and tokens_match(given, expected)


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
