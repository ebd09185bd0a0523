"""The lecture's clock server: a client sends a 25-byte question, the server answers ctime().

    python -m servers.clock                          # TCPServer + StreamRequestHandler, port 12091
    python -m servers.clock --udp                    # UDPServer + DatagramRequestHandler
    python -m servers.clock --unix /tmp/clock        # UnixStreamServer
    python -m servers.clock --unix /tmp/clock --udp  # UnixDatagramServer
    python -m servers.clock --once                   # handle_request(): one client, then exit
    python -m servers.clock --threading              # a thread per client
    python -m servers.clock --work 2 [--busy]        # each answer takes 2 s (waiting, or CPU work)

The console, as on the slides (ports and times vary):

    listening on tcp://127.0.0.1:12091          (forkwatch's address line, always first)
    server is listening to 12091
    press ctrl c to stop server
    connected at ('127.0.0.1', 51234)           (for each client)
    read "What is the time?        " from client
    writing "Sat Nov 29 10:00:00 2025" to client
     ctrl c pressed, closing server             (on Ctrl-C; exit code 0)

The question is read in full even when it arrives in pieces; a client that closes before
sending 25 bytes gets a clear error line instead of the time. The answer is ctime() and a
newline: 25 bytes. --once ends with `served one client, exiting` and exit code 0.
--work SECONDS makes each answer take that long (`working for 2 seconds ...`), so one
client at a time, threads and processes can be compared; --busy spends that time as CPU
work, which threads of one process share (the GIL) and forked processes do not.
"""

import os
import socket
import socketserver
import stat
import time

from servers.common import (
    IDLE_TIMEOUT,
    QUESTION_SIZE,
    Terminated,
    announce,
    base_parser,
    clock_answer,
    fail,
    say,
    seconds_option,
    seconds_text,
    short_question,
    shown,
    spend,
    stop_on_sigterm,
)

DEFAULT_PORT = 12091
DRAIN_LIMIT = 64 * 1024


class ServerClock(socketserver.StreamRequestHandler):
    """The server tells the clients the time (TCP and Unix stream)."""

    timeout = IDLE_TIMEOUT  # fix: a client that never asks is let go after the idle timeout

    def handle(self):
        """Handler sends time to client."""
        say("connected at", describe_client(self.client_address))
        try:
            data = self.rfile.read(QUESTION_SIZE)  # fix: all 25 bytes, even when they come in pieces
        except (TimeoutError, ConnectionError) as exc:
            say(f"client gone before asking: {exc.__class__.__name__}")
            return
        try:
            self.wfile.write(answer(self.server, data))
            self.wfile.flush()
        except ConnectionError:
            say("client left before the answer")
            return
        self.drain()  # fix: the answer is not lost to a reset when the client sent more

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


class DatagramClock(socketserver.DatagramRequestHandler):
    """UDP and Unix datagram: one datagram is the question, one datagram the answer."""

    def handle(self):
        say("connected at", describe_client(self.client_address))
        self.wfile.write(answer(self.server, self.rfile.read(QUESTION_SIZE)))


def answer(server, data):
    """The reply to one question: the time (after the --work, if any), or an error line
    for a short question."""
    if len(data) < QUESTION_SIZE:
        return short_question(data)
    say(f'read "{shown(data)}" from client')
    if server.work:
        say(f"working {'on the CPU ' if server.busy else ''}for {seconds_text(server.work)} ...")
        spend(server.work, server.busy)
    now = time.ctime()
    say(f'writing "{now}" to client')
    return clock_answer(now)


def describe_client(address):
    return repr(address) if address else "a unix socket client"


def main(argv=None):
    args = parse_options(argv)
    try:
        server = make_server(args.host, args.port, args.udp, args.unix, args.threading, args.work, args.busy)
    except OSError as exc:
        return fail(f"cannot listen: {exc}")
    stop_on_sigterm()  # before the address line: a Stop may come the moment it is read
    try:
        announce(server.socket, args.unix)
        say("server is listening to", args.unix or server.server_address[1])
        say("press ctrl c to stop server")
        with server:
            if args.once:
                server.handle_request()
                say("served one client, exiting")
            else:
                server.serve_forever()
    except Terminated:
        say("SIGTERM received, closing server")
    except KeyboardInterrupt:
        say(" ctrl c pressed, closing server")
    finally:
        remove_socket_file(args.unix)
    return 0


# --- what forkwatch adds around the lecture's program --------------------------------------


def parse_options(argv):
    parser = base_parser(__doc__.splitlines()[0], DEFAULT_PORT)
    parser.add_argument(
        "--udp",
        action="store_true",
        help="datagrams instead of a stream: UDPServer, or with --unix a Unix datagram socket (UnixDatagramServer)",
    )
    parser.add_argument(
        "--unix",
        metavar="PATH",
        help="a Unix socket at PATH instead of TCP/UDP (stream; datagram with --udp)",
    )
    parser.add_argument("--once", action="store_true", help="handle_request(): serve one client, then exit")
    parser.add_argument("--threading", action="store_true", help="a thread per client")
    parser.add_argument(
        "--work",
        type=seconds_option,
        default=0.0,
        metavar="SECONDS",
        help="each answer takes SECONDS (the handler waits that long before it writes the time)",
    )
    parser.add_argument(
        "--busy",
        action="store_true",
        help="spend the --work time as CPU work instead of waiting (threads share one core: the GIL)",
    )
    args = parser.parse_args(argv)
    if args.busy and not args.work:
        parser.error("--busy spends the --work time as CPU work: give --work SECONDS too")
    return args


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


def make_server(
    host="127.0.0.1", port=DEFAULT_PORT, udp=False, unix=None, threading=False, work=0.0, busy=False
):
    server_class = SERVER_CLASSES[(unix is not None, udp, threading)]
    handler = DatagramClock if udp else ServerClock
    if unix is not None:
        remove_stale_socket(unix)
        server = server_class(unix, handler)
    else:
        server = server_class((host, port), handler)
    server.work, server.busy = work, busy
    return server


def remove_socket_file(path):
    if path:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


if __name__ == "__main__":
    raise SystemExit(main())
