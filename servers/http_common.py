"""What the two HTTP lecture servers share: a handler that sends whole pages safely."""

import http.server
import socketserver
import urllib.parse

from servers.common import IDLE_TIMEOUT

ECHO_LIMIT = 200


class PageHandler(http.server.BaseHTTPRequestHandler):
    """Adds send_page() (status line, headers, length, body) and a bounded read timeout."""

    timeout = min(10.0, IDLE_TIMEOUT)
    protocol_version = "HTTP/1.0"
    # Answer even a malformed or HTTP/0.9-style request with a status line and headers.
    default_request_version = "HTTP/1.0"

    def path_only(self):
        return urllib.parse.urlsplit(self.path).path or "/"

    @staticmethod
    def shown_path(path):
        """A path as it may be echoed: decoded, and cut when it is very long."""
        text = urllib.parse.unquote(path, errors="replace")
        if len(text) > ECHO_LIMIT:
            text = text[:ECHO_LIMIT] + "…"
        return text

    def send_page(self, status, body):
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(data)


class QuietHTTPServer(http.server.ThreadingHTTPServer):
    """ThreadingHTTPServer without the reverse DNS look-up in server_bind (it can hang on a
    machine with no network, as in many classrooms)."""

    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = host
        self.server_port = port


def make_http_server(host, port, handler):
    return QuietHTTPServer((host, port), handler)
