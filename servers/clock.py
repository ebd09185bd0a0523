"""The lecture's clock server: a client sends a 25-byte question, the server answers ctime().

    python -m servers.clock                    # TCPServer + StreamRequestHandler, port 12091
    python -m servers.clock --udp              # UDPServer + DatagramRequestHandler
    python -m servers.clock --unix /tmp/clock  # UnixStreamServer (--udp: UnixDatagramServer)
    python -m servers.clock --once             # handle_request(): one client, then exit
    python -m servers.clock --threading        # a thread per client

The question is read in full even when it arrives in pieces; a client that closes before
sending 25 bytes gets a clear error line instead of the time. The answer is ctime() and a
newline: 25 bytes.
"""

import os
import socket
import socketserver
import stat
import time

from servers.common import (
    IDLE_TIMEOUT,
    QUESTION_SIZE,
    announce,
    base_parser,
    clock_answer,
    fail,
    run_forever,
    say,
    shown,
    stop_on_sigterm,
)

DEFAULT_PORT = 12091
DRAIN_LIMIT = 64 * 1024


def describe_client(address):
    return repr(address) if address else "a unix socket client"


def answer_question(question):
    """The reply to one question: the time, or an error line for a short question."""
    if len(question) < QUESTION_SIZE:
        say(f'short question: {len(question)} of {QUESTION_SIZE} bytes "{shown(question)}"')
        return f"error: short question, {len(question)} of {QUESTION_SIZE} bytes\n".encode()
    say(f'read "{shown(question)}" from client')
    now = time.ctime()
    say(f'writing "{now}" to client')
    return clock_answer(now)


class ClockRequestHandler(socketserver.StreamRequestHandler):
    """TCP and Unix stream: read the 25-byte question (all of it), write the time."""

    timeout = IDLE_TIMEOUT

    def handle(self):
        say("connected at", describe_client(self.client_address))
        try:
            question = self.rfile.read(QUESTION_SIZE)
        except (TimeoutError, ConnectionError) as exc:
            say(f"client gone before asking: {exc.__class__.__name__}")
            return
        try:
            self.wfile.write(answer_question(question))
            self.wfile.flush()
        except ConnectionError:
            say("client left before the answer")
            return
        self.drain()

    def drain(self):
        """Discard what a client sent past its question, so closing does not reset the
        connection before the client has read its answer."""
        self.connection.settimeout(0.5)
        left = DRAIN_LIMIT
        try:
            while left > 0 and self.rfile.peek(1):
                left -= len(self.rfile.read1(left))
        except (OSError, ValueError):
            pass


class ClockDatagramHandler(socketserver.DatagramRequestHandler):
    """UDP and Unix datagram: one datagram is the question, one datagram the answer."""

    def handle(self):
        say("connected at", describe_client(self.client_address))
        self.wfile.write(answer_question(self.rfile.read(QUESTION_SIZE)))


class _ReusingTCPServer(socketserver.TCPServer):
    allow_reuse_address = True


class _ReusingThreadingTCPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class _ThreadingUnixStreamServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


class _ThreadingUDPServer(socketserver.ThreadingUDPServer):
    daemon_threads = True


class _ThreadingUnixDatagramServer(socketserver.ThreadingUnixDatagramServer):
    daemon_threads = True


SERVER_CLASSES = {
    # (unix, udp, threading) -> class
    (False, False, False): _ReusingTCPServer,
    (False, False, True): _ReusingThreadingTCPServer,
    (False, True, False): socketserver.UDPServer,
    (False, True, True): _ThreadingUDPServer,
    (True, False, False): socketserver.UnixStreamServer,
    (True, False, True): _ThreadingUnixStreamServer,
    (True, True, False): socketserver.UnixDatagramServer,
    (True, True, True): _ThreadingUnixDatagramServer,
}


def remove_stale_socket(path):
    """Remove a leftover Unix socket file; refuse to touch anything that is not a socket."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)
        return
    except OSError:
        os.unlink(path)
        return
    finally:
        probe.close()
    raise FileExistsError(f"{path} is in use by a running server")


def make_server(host="127.0.0.1", port=DEFAULT_PORT, udp=False, unix=None, threading=False):
    server_class = SERVER_CLASSES[(unix is not None, udp, threading)]
    handler = ClockDatagramHandler if udp else ClockRequestHandler
    if unix is not None:
        remove_stale_socket(unix)
        return server_class(unix, handler)
    return server_class((host, port), handler)


def main(argv=None):
    parser = base_parser(__doc__.splitlines()[0], DEFAULT_PORT)
    parser.add_argument("--udp", action="store_true", help="datagrams instead of a stream")
    parser.add_argument("--unix", metavar="PATH", help="a Unix socket at PATH instead of TCP/UDP")
    parser.add_argument("--once", action="store_true", help="handle_request(): serve one client, then exit")
    parser.add_argument("--threading", action="store_true", help="a thread per client")
    args = parser.parse_args(argv)
    try:
        server = make_server(args.host, args.port, args.udp, args.unix, args.threading)
    except OSError as exc:
        return fail(f"cannot listen: {exc}")
    announce(server.socket, args.unix)
    if args.unix:
        say(f"server is listening to {args.unix}")
    else:
        say(f"server is listening to {server.server_address[1]}")

    def remove_socket_file():
        if args.unix:
            try:
                os.unlink(args.unix)
            except FileNotFoundError:
                pass

    if args.once:
        stop_on_sigterm()
        try:
            with server:
                server.handle_request()
        except KeyboardInterrupt:
            pass
        finally:
            remove_socket_file()
        say("served one client, exiting")
        return 0
    return run_forever(server, on_stop=remove_socket_file)


if __name__ == "__main__":
    raise SystemExit(main())
