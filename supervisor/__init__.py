"""forkwatch's dashboard: a Flask + Flask-SocketIO app over the supervisor core."""

import logging
import os

from flask import Flask

from supervisor.core.catalog import PROJECT_ROOT


def create_app(config=None):
    """The app: defaults → config file → environment (FORKWATCH_*) → `config` overrides.

    Starts the supervisor core (watcher, watchdog, recorder). Call `app.forkwatch_shutdown()`
    to stop every server, client and background task.
    """
    from supervisor.core import config as settings_module
    from supervisor.core import lesson as lesson_module
    from supervisor.core.classroom import Classroom
    from supervisor.core.comparison_run import Comparisons
    from supervisor.core.fork_clients import ForkClients
    from supervisor.core.manager import Manager
    from supervisor.core.recording import Recording
    from supervisor.web import api, hall, live, replay, source, views
    from supervisor.web.auth import Generation
    from supervisor.web.engine import SessionKeeper
    from supervisor.web.extensions import new_socketio
    from supervisor.web.frontdoor import FrontDoor, HostNames
    from supervisor.web.play import RateLimiter
    from supervisor.web.room import Room

    overrides = dict(config or {})
    config_file = overrides.pop("config_file", None)
    join = overrides.pop("join", None)
    rotate_token = overrides.pop("rotate_token", False)
    extra_servers = overrides.pop("extra_servers", ())  # ServerSpecs beyond the catalogue
    settings = settings_module.load(config_file, overrides)
    app = Flask(
        __name__,
        template_folder=os.path.join(PROJECT_ROOT, "templates"),
        static_folder=os.path.join(PROJECT_ROOT, "static"),
    )
    app.config.update(
        SECRET_KEY=settings["secret_key"],
        SESSION_COOKIE_NAME="forkwatch",
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_HTTPONLY=True,
        MAX_CONTENT_LENGTH=64 * 1024,
        FORKWATCH=settings,
        FORKWATCH_TOKEN=settings["token"],
        FORKWATCH_JOIN=join,
    )
    app.debug = False  # never: the debugger would run code for anyone who can reach it
    app.json.sort_keys = False
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    manager = Manager(settings, extra_servers)  # takes the config folder's lock: one forkwatch per folder
    if rotate_token:
        try:
            settings["token"] = settings_module.rotate_token(settings)
        except ValueError:
            manager.shutdown()
            raise
        app.config["FORKWATCH_TOKEN"] = settings["token"]
    app.extensions["forkwatch_generation"] = Generation(settings["state_dir"])
    if rotate_token:
        app.extensions["forkwatch_generation"].renew()
    clients = ForkClients(manager, settings["max_fork_clients"])
    comparisons = Comparisons(manager)
    try:
        lesson = lesson_module.load(
            settings["lesson"] or lesson_module.DEFAULT_LESSON, manager.catalog, comparisons.known
        )
    except lesson_module.LessonError:
        manager.shutdown()
        raise
    app.extensions["forkwatch"] = manager
    app.extensions["forkwatch_clients"] = clients
    classroom = Classroom(manager, clients, comparisons, lesson)
    app.extensions["forkwatch_classroom"] = classroom
    app.extensions["forkwatch_limiter"] = RateLimiter(settings["play_rate"])
    app.extensions["forkwatch_stack_limiter"] = RateLimiter(settings["play_rate"])
    room = Room(settings)
    app.extensions["forkwatch_room"] = room
    socketio = new_socketio(app, settings)
    app.extensions["forkwatch_socketio"] = socketio
    socketio.on_namespace(live.LiveNamespace(live.NAMESPACE, app))
    sessions = SessionKeeper(socketio, room, settings, live.NAMESPACE)
    app.extensions["forkwatch_sessions"] = sessions
    hosts = HostNames(settings["host"], settings["public_hosts"])
    app.wsgi_app = FrontDoor(app.wsgi_app, hosts, sessions)
    manager.subscribe(live.fan_out(socketio))
    recording = Recording.start(manager, settings)
    app.extensions["forkwatch_recording"] = recording
    if recording.store is not None:
        classroom.stage_recordings(recording.store)

    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(hall.bp)
    app.register_blueprint(replay.bp)
    app.register_blueprint(source.bp)
    api.json_errors(app)
    app.after_request(views.security_headers)
    manager.start_background(spawn=socketio.start_background_task)
    socketio.start_background_task(sessions.run)

    def shutdown():
        sessions.close()
        clients.stop_all()
        manager.stop_all()  # a comparison or lesson step under way starts nothing more
        comparisons.wait(10.0)
        manager.shutdown()
        recording.close()

    app.forkwatch_shutdown = shutdown
    return app
