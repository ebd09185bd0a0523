"""forkwatch's dashboard: a Flask + Flask-SocketIO app over the supervisor core."""


def create_app(config=None):
    """The app: defaults → config file → environment (FORKWATCH_*) → `config` overrides.

    Starts the supervisor core (watcher, watchdog, recorder). Call `app.forkwatch_shutdown()`
    to stop every server, client and background task. With `message_queue` set, every
    event is also published to that Redis, for the viewer workers (create_viewer_app).
    """
    from supervisor.core import config as settings_module
    from supervisor.core import lesson as lesson_module
    from supervisor.core.classroom import Classroom
    from supervisor.core.comparison_run import Comparisons
    from supervisor.core.fork_clients import ForkClients
    from supervisor.core.manager import Manager
    from supervisor.core.recording import Recording
    from supervisor.web import api, floor, hall, live, replay, source
    from supervisor.web.auth import Generation
    from supervisor.web.backend import LocalBackend
    from supervisor.web.extensions import new_socketio
    from supervisor.web.message_queue import PublishingQueue
    from supervisor.web.outbox import Outbox
    from supervisor.web.play import RateLimiter

    overrides = dict(config or {})
    config_file = overrides.pop("config_file", None)
    join = overrides.pop("join", None)
    rotate_token = overrides.pop("rotate_token", False)
    extra_servers = overrides.pop("extra_servers", ())  # ServerSpecs beyond the catalogue
    settings = settings_module.load(config_file, overrides)
    app = floor.flask_app(settings, settings["secret_key"])
    app.config.update(FORKWATCH_TOKEN=settings["token"], FORKWATCH_JOIN=join)

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
    queue = None
    if settings["message_queue"]:
        queue = PublishingQueue(settings["message_queue"], settings["message_channel"])
    socketio = new_socketio(app, settings, client_manager=queue)
    outbox = Outbox(socketio, queue, live.NAMESPACE, live.BROADCAST) if queue else None
    floor.install(app, LocalBackend(app, manager, clients, classroom, outbox), socketio)
    manager.subscribe(outbox if outbox else live.fan_out(socketio))
    recording = Recording.start(manager, settings)
    app.extensions["forkwatch_recording"] = recording
    if recording.store is not None:
        classroom.stage_recordings(replay.recording_known(recording.store))

    app.register_blueprint(api.bp)
    app.register_blueprint(hall.bp)
    app.register_blueprint(replay.bp)
    app.register_blueprint(source.bp)
    api.json_errors(app)
    if outbox:
        outbox.start()
    manager.start_background(spawn=socketio.start_background_task)

    def shutdown():
        app.extensions["forkwatch_sessions"].close()
        clients.stop_all()
        manager.stop_all()  # a comparison or lesson step under way starts nothing more
        comparisons.wait(10.0)
        manager.shutdown()
        recording.close()
        if outbox:
            outbox.close()  # the servers' last events reach the workers first

    app.forkwatch_shutdown = shutdown
    return app


def create_viewer_app(config=None):
    """A viewer worker: the page, the static files and /live, fed by the supervisor's
    events from the message queue; everything else is the supervisor's, reached with each
    browser's own credentials (supervisor/web/remote.py). `app.forkwatch_shutdown()` stops
    its background threads. Raises ConfigError without a message queue."""
    import secrets

    from supervisor.core import config as settings_module
    from supervisor.web import api, floor, forward
    from supervisor.web.extensions import new_socketio
    from supervisor.web.feed import Feed
    from supervisor.web.message_queue import ListeningQueue
    from supervisor.web.remote import RemoteBackend, Supervisor

    overrides = dict(config or {})
    settings = settings_module.read(overrides.pop("config_file", None), overrides)
    if not settings["message_queue"]:
        raise settings_module.ConfigError(
            "a viewer worker needs the message queue: --message-queue redis://HOST:PORT/N "
            "(or message_queue in the config file, or FORKWATCH_MESSAGE_QUEUE)"
        )
    # Its own cookie name and a key of its own that signs nothing a browser keeps: the
    # session cookie is the supervisor's, passed through untouched.
    app = floor.flask_app(settings, secrets.token_urlsafe(32), cookie_name="forkwatch-viewer")
    supervisor = Supervisor(settings["supervisor_url"])
    app.extensions["forkwatch_supervisor"] = supervisor
    feed = Feed(supervisor, settings["message_queue"])
    queue = ListeningQueue(settings["message_queue"], settings["message_channel"], feed)
    socketio = new_socketio(app, settings, client_manager=queue, transports=("websocket",))
    backend = RemoteBackend(supervisor, feed, forward.forward)
    namespace = floor.install(app, backend, socketio)
    app.register_blueprint(forward.bp)
    api.json_errors(app)
    feed.attach(socketio, namespace)
    app.extensions["forkwatch_feed"] = feed
    queue.start_listening()
    feed.start(socketio.start_background_task)
    backend.warm()

    def shutdown():
        app.extensions["forkwatch_sessions"].close()
        feed.close()

    app.forkwatch_shutdown = shutdown
    return app
