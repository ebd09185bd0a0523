"""The Socket.IO extension: made per app in create_app(), so nothing starts at import
time and two apps (in tests) never share a server."""

from flask_socketio import SocketIO


def new_socketio(app, settings, client_manager=None, transports=None):
    """`client_manager`: the message queue's manager, when there is one
    (supervisor/web/message_queue.py); `transports`: those Engine.IO accepts (a viewer
    worker: WebSocket only)."""
    options = {"client_manager": client_manager} if client_manager is not None else {}
    if transports is not None:
        options["transports"] = list(transports)
    return SocketIO(
        app,
        async_mode="threading",
        # None keeps Socket.IO's same-origin check: a page from another origin is refused.
        cors_allowed_origins=None,
        manage_session=True,
        logger=False,
        engineio_logger=False,
        max_http_buffer_size=64 * 1024,
        ping_interval=10,
        ping_timeout=10,
        # One event at a time per connection, on the thread that reads it: no thread per
        # event, so a flood cannot grow threads (the room's limits drop the excess).
        async_handlers=False,
        **options,
    )
