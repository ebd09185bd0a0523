"""Exercise 2: guess the server's secret number.

    python -m servers.secret_number --port 12095              # threads, secret in 1-100
    python -m servers.secret_number --forking --secret 42     # a process per client

A client sends guesses, one line each, as many as it likes; each gets one line back:
`wrong`, `right`, or — for every guess after anyone was right — `secret found`. A line
that is not a whole number gets `error: not a number`.

The secret comes from --secret, else $FORKWATCH_SECRET (so a supervisor never shows it in
a command line), else a random number. It is never printed.

"Found" is one flag shared by every handler. With threads that is a variable under a
lock. With --forking each client is served by its own process, whose variables are copies:
the flag lives in a page of memory mapped MAP_SHARED before any fork, and a lock made
before the fork guards the test-and-set, so exactly one guesser ever hears `right`.
"""

import mmap
import multiprocessing
import os
import socketserver
import threading

from servers.common import (
    IDLE_TIMEOUT,
    LineTooLong,
    base_parser,
    fail,
    random_number,
    read_line,
    reset_signals_in_child,
    resolve_secret,
    run_forever,
    say,
    shown,
)

DEFAULT_PORT = 12095
GUESS_LINE_LIMIT = 64


class ThreadFoundFlag:
    """Found-state for handlers that are threads of one process."""

    def __init__(self):
        self._lock = threading.Lock()
        self._found = False

    def claim(self):
        """Mark the secret found. True only for the first caller."""
        with self._lock:
            first = not self._found
            self._found = True
            return first

    def is_set(self):
        with self._lock:
            return self._found


class SharedFoundFlag:
    """Found-state for handlers that are forked processes: shared memory plus a lock."""

    def __init__(self):
        self._page = mmap.mmap(-1, mmap.PAGESIZE, flags=mmap.MAP_SHARED)
        self._lock = multiprocessing.get_context("fork").Lock()

    def claim(self):
        with self._lock:
            first = self._page[0] == 0
            self._page[0] = 1
            return first

    def is_set(self):
        with self._lock:
            return self._page[0] == 1


def judge(line, secret, found):
    """The reply to one guess line."""
    text = line.decode("ascii", "replace").strip()
    try:
        number = int(text, 10)
    except ValueError:
        return "error: not a number"
    if found.is_set():
        return "secret found"
    if str(number) != secret:
        return "wrong"
    return "right" if found.claim() else "secret found"


class GuessHandler(socketserver.StreamRequestHandler):
    timeout = IDLE_TIMEOUT

    def setup(self):
        if os.getpid() != self.server.parent_pid:
            reset_signals_in_child()
        super().setup()

    def handle(self):
        addr = self.client_address
        say("connected at", addr)
        while True:
            try:
                line = read_line(self.rfile, GUESS_LINE_LIMIT)
            except LineTooLong:
                self.reply("error: line too long")
                return
            except (TimeoutError, ConnectionError):
                return
            if line is None:
                say(f"{addr} left")
                return
            answer = judge(line, self.server.secret, self.server.found)
            say(f'{addr} guessed "{shown(line)}": {answer}')
            if not self.reply(answer):
                return

    def reply(self, text):
        try:
            self.wfile.write(text.encode() + b"\n")
            self.wfile.flush()
            return True
        except OSError:
            return False


class _GameMixin:
    allow_reuse_address = True

    def setup_game(self, secret, found):
        self.secret = secret
        self.found = found
        self.parent_pid = os.getpid()


class ThreadingGuessServer(_GameMixin, socketserver.ThreadingTCPServer):
    daemon_threads = True


class ForkingGuessServer(_GameMixin, socketserver.ForkingTCPServer):
    max_children = 100


def make_server(host="127.0.0.1", port=DEFAULT_PORT, secret="42", forking=False):
    if forking:
        server = ForkingGuessServer((host, port), GuessHandler)
        server.setup_game(secret, SharedFoundFlag())
    else:
        server = ThreadingGuessServer((host, port), GuessHandler)
        server.setup_game(secret, ThreadFoundFlag())
    return server


def valid_secret(text):
    try:
        return str(int(text, 10))
    except (TypeError, ValueError):
        return None


def main(argv=None):
    parser = base_parser(__doc__.splitlines()[0], DEFAULT_PORT)
    parser.add_argument("--secret", help="the secret number (default: $FORKWATCH_SECRET, else random 1-100)")
    parser.add_argument("--forking", action="store_true", help="a process per client instead of a thread")
    args = parser.parse_args(argv)
    secret = valid_secret(resolve_secret(args.secret, random_number))
    if secret is None:
        return fail("the secret must be a whole number")
    try:
        server = make_server(args.host, args.port, secret, args.forking)
    except OSError as exc:
        return fail(f"cannot listen: {exc}")
    return run_forever(server, f"secret number server is listening to {server.server_address[1]}")


if __name__ == "__main__":
    raise SystemExit(main())
