"""The web floor both kinds of process serve: the Flask app, Socket.IO with /live, the
page, the room's limits, the client's address behind trusted proxies, and the headers on
every answer — the supervisor's over its Manager, a viewer worker's over the supervisor;
only the backend differs (supervisor/web/backend.py)."""

import logging
import os

from flask import Flask

from supervisor.core.catalog import PROJECT_ROOT
from supervisor.web import live, views
from supervisor.web.auth import PAGE_COOKIE
from supervisor.web.engine import SessionKeeper
from supervisor.web.frontdoor import FrontDoor, HostNames
from supervisor.web.proxies import TrustedProxies
from supervisor.web.room import Room


def flask_app(settings, secret_key, cookie_name=PAGE_COOKIE):
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
    """/live, the page and the headers, over `backend`, within the room's limits: the
    Room, the Engine.IO session keeper (its sweep started here) and the front door, with
    the client's address from trusted proxies known to all of them. The LiveNamespace."""
    settings = app.config["FORKWATCH"]
    app.extensions["forkwatch_backend"] = backend
    app.extensions["forkwatch_socketio"] = socketio
    room = Room(settings)
    app.extensions["forkwatch_room"] = room
    namespace = live.LiveNamespace(live.NAMESPACE, app)
    socketio.on_namespace(namespace)
    sessions = SessionKeeper(socketio, room, settings, live.NAMESPACE)
    app.extensions["forkwatch_sessions"] = sessions
    app.register_blueprint(views.bp)
    app.after_request(views.security_headers)
    hosts = HostNames(settings["host"], settings["public_hosts"])
    app.wsgi_app = FrontDoor(app.wsgi_app, hosts, sessions)
    if settings["trusted_proxies"]:  # outermost, so the front door and Socket.IO see the client
        app.wsgi_app = TrustedProxies(app.wsgi_app, settings["trusted_proxies"])
    socketio.start_background_task(sessions.run)
    return namespace
