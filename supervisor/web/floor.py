"""The web floor both kinds of process serve: the Flask app, Socket.IO with /live, the
page, the client's address behind trusted proxies, and the headers on every answer — the
supervisor's over its Manager, a viewer worker's over the supervisor; only the backend
differs (supervisor/web/backend.py)."""

import logging
import os

from flask import Flask

from supervisor.core.catalog import PROJECT_ROOT
from supervisor.web import live, views
from supervisor.web.proxies import TrustedProxies


def flask_app(settings, secret_key, cookie_name="forkwatch"):
    app = Flask(
        "supervisor",
        template_folder=os.path.join(PROJECT_ROOT, "templates"),
        static_folder=os.path.join(PROJECT_ROOT, "static"),
    )
    app.config.update(
        SECRET_KEY=secret_key,
        SESSION_COOKIE_NAME=cookie_name,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_HTTPONLY=True,
        MAX_CONTENT_LENGTH=64 * 1024,
        FORKWATCH=settings,
    )
    app.debug = False  # never: the debugger would run code for anyone who can reach it
    app.json.sort_keys = False
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    return app


def install(app, backend, socketio):
    """/live, the page and the headers, over `backend`; the LiveNamespace."""
    app.extensions["forkwatch_backend"] = backend
    app.extensions["forkwatch_socketio"] = socketio
    namespace = live.LiveNamespace(live.NAMESPACE, app)
    socketio.on_namespace(namespace)
    app.register_blueprint(views.bp)
    app.after_request(views.security_headers)
    trusted = app.config["FORKWATCH"]["trusted_proxies"]
    if trusted:  # outside Socket.IO's middleware, so its handshakes see the client too
        app.wsgi_app = TrustedProxies(app.wsgi_app, trusted)
    return namespace
