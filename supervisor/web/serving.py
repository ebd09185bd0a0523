"""The HTTP server: Werkzeug's threaded server, bounded.

- At most `max_connections` open connections, and `max_connections_per_address` from one
  address; one more is answered at once, from the accepting thread, with a 503 and a
  sentence (no thread is started for it). A trusted proxy's connections (nginx in front
  of a viewer worker, a worker in front of the supervisor) carry many clients: they count
  in the total only, and the front door's limits per address see each client.
- A request must arrive within `request_timeout` seconds of silence, or its connection
  is closed (a client that connects and sends nothing, or sends a byte a minute, holds a
  thread only that long); a WebSocket, which the dashboard pings every 10 s, may stay
  silent for `WEBSOCKET_IDLE` seconds, and a write that cannot go on for as long ends it.
- A WebSocket's kernel send buffer is fixed at `WEBSOCKET_SEND_BUFFER`, so what a client
  has not read lies in Engine.IO's queue, where the session keeper bounds it.
- TCP_NODELAY on every connection: events are small WebSocket frames, and Nagle's
  algorithm would hold one back until the previous was acknowledged — up to the peer's
  40 ms delayed ACK.
"""

import json
import logging
import socket

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from supervisor.web.proxies import addresses, is_proxy

log = logging.getLogger(__name__)
WEBSOCKET_IDLE = 30.0  # > Engine.IO's ping interval + ping timeout (10 s + 10 s)
WEBSOCKET_SEND_BUFFER = 256 * 1024  # the kernel's share of what a client has not read yet


class DashboardRequestHandler(WSGIRequestHandler):
    timeout = 10.0  # the server's request_timeout replaces it

    def make_environ(self):
        environ = super().make_environ()
        if environ.get("HTTP_UPGRADE", "").lower() == "websocket":
            self.connection.settimeout(WEBSOCKET_IDLE)
            # A fixed send buffer (the kernel would grow it to 4 MiB for a client that
            # reads nothing): past it, messages wait in Engine.IO's queue, which is bounded.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, WEBSOCKET_SEND_BUFFER)
        return environ

    def connection_dropped(self, error, environ=None):
        """A WebSocket takes the connection over: its handshake never goes through
        Werkzeug's response, which is where Werkzeug sets `Connection: close`, so the
        handler would read the connection's leftover bytes (the browser's close frame) as
        the next HTTP request and log a 400 for it. The WebSocket layer ends by raising
        ConnectionError, which arrives here."""
        self.close_connection = True

    def log_error(self, format, *args):
        if format.startswith("Request timed out"):  # a silent client, closed as designed
            log.debug("%s: a request timed out", self.address_string())
            return
        super().log_error(format, *args)


class DashboardServer(ThreadedWSGIServer):
    daemon_threads = True

    def __init__(self, host, port, app, request_timeout=10.0):
        handler = type("Handler", (DashboardRequestHandler,), {"timeout": request_timeout})
        super().__init__(host, port, app, handler=handler)
        self.room = app.extensions["forkwatch_room"]
        self.proxies = addresses(app.config["FORKWATCH"]["trusted_proxies"] or ())

    def get_request(self):
        conn, address = super().get_request()
        if conn.family in (socket.AF_INET, socket.AF_INET6):
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, address

    def verify_request(self, request, client_address):
        refusal = self.room.open_connection(
            client_address[0], shared=is_proxy(client_address[0], self.proxies)
        )
        if refusal is None:
            return True
        refuse(request, refusal)
        return False

    def process_request(self, request, client_address):
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.room.close_connection(client_address[0])
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.room.close_connection(client_address[0])


def refuse(conn, sentence):
    """Answer 503 without reading the request (what has arrived is discarded first, so
    the close does not reset the answer away) and without blocking the accepting thread."""
    body = json.dumps({"error": sentence}).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nRetry-After: 5\r\nConnection: close\r\n\r\n"
    )
    try:
        conn.setblocking(False)
        for _ in range(16):
            if not conn.recv(65536):
                break
    except OSError:
        pass
    try:
        conn.send(head.encode() + body)
    except OSError:
        pass
