"""Exercise 1: a server that swaps strings between two clients.

    python -m servers.swap --port 12094 --timeout 60

A client's first complete line (ending in a newline) is its string. Clients are paired in
the order their lines arrive; each receives the other's line. A client that closes before
sending a whole line is simply gone and never paired; one left alone for --timeout seconds
gets `no partner`. Lines longer than 1024 bytes and empty lines get an error line.
"""

import select
import socket
import socketserver
import threading
import time

from servers.common import (
    IDLE_TIMEOUT,
    MAX_LINE,
    LineTooLong,
    base_parser,
    fail,
    read_line,
    run_forever,
    say,
    shown,
)

DEFAULT_PORT = 12094

CHECK_TICK = 0.2


class Waiter:
    """A client with its line, waiting for a partner."""

    def __init__(self, line):
        self.line = line
        self.partner_line = None
        self.matched = threading.Event()


class Matchmaker:
    """Pairs waiters in arrival order. One lock; a withdrawn waiter is never matched."""

    def __init__(self):
        self._lock = threading.Lock()
        self._waiting = None

    def offer(self, line):
        """Returns (waiter, partner_line): partner_line is set when matched at once."""
        with self._lock:
            other = self._waiting
            if other is not None:
                self._waiting = None
                other.partner_line = line
                other.matched.set()
                return None, other.line
            me = Waiter(line)
            self._waiting = me
            return me, None

    def withdraw(self, waiter):
        """Take a waiter out of the queue. False if a partner already took it."""
        with self._lock:
            if self._waiting is waiter:
                self._waiting = None
                return True
            return False


class SwapHandler(socketserver.StreamRequestHandler):
    timeout = IDLE_TIMEOUT

    def handle(self):
        addr = self.client_address
        say("connected at", addr)
        try:
            line = read_line(self.rfile, MAX_LINE)
        except LineTooLong:
            self.reply(b"error: line too long (1024 bytes at most)")
            return
        except (TimeoutError, ConnectionError):
            say(f"{addr} sent no line, gone")
            return
        if line is None:
            say(f"{addr} left before sending a whole line")
            return
        if not line:
            self.reply(b"error: empty line")
            return
        say(f'{addr} sent "{shown(line)}"')
        waiter, partner_line = self.server.matchmaker.offer(line)
        if waiter is not None:
            partner_line = self.wait_for_partner(waiter)
            if partner_line is None:
                return
        self.reply(partner_line)
        say(f'sent "{shown(partner_line)}" to {addr}')

    def wait_for_partner(self, waiter):
        deadline = time.monotonic() + self.server.partner_timeout
        while not waiter.matched.wait(CHECK_TICK):
            left_early = self.client_left()
            if left_early or time.monotonic() >= deadline:
                if self.server.matchmaker.withdraw(waiter):
                    if left_early:
                        say(f"{self.client_address} left while waiting")
                    else:
                        say(f"no partner for {self.client_address}")
                        self.reply(b"no partner")
                    return None
                break  # a partner took us just now
        return waiter.partner_line

    def client_left(self):
        """True when the client closed its side while waiting (EOF is readable)."""
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def reply(self, line):
        try:
            self.wfile.write(line + b"\n")
            self.wfile.flush()
        except OSError:
            pass


class SwapServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, address, partner_timeout=60.0):
        self.matchmaker = Matchmaker()
        self.partner_timeout = partner_timeout
        super().__init__(address, SwapHandler)


def make_server(host="127.0.0.1", port=DEFAULT_PORT, partner_timeout=60.0):
    return SwapServer((host, port), partner_timeout)


def main(argv=None):
    parser = base_parser(__doc__.splitlines()[0], DEFAULT_PORT)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a client waits for a partner")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be > 0")
    try:
        server = make_server(args.host, args.port, args.timeout)
    except OSError as exc:
        return fail(f"cannot listen: {exc}")
    return run_forever(server, f"swap server is listening to {server.server_address[1]}")


if __name__ == "__main__":
    raise SystemExit(main())
