"""The checks' client never trusts the server: every wait ends at its deadline, every read
at its byte limit, bytes that are not UTF-8 are kept and shown escaped, and a server that
misbehaves makes a check fail with words, never crash."""

import socket
import threading
import time

import pytest

from supervisor.core.checks import EXERCISES
from supervisor.core.checks.base import Target, run_check
from supervisor.core.checks.client import Client, Transcript


class HostileServer:
    """A listener on 127.0.0.1 whose every connection is handed to `behave(conn)`."""

    def __init__(self, behave):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.behave = behave
        self.conns = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.conns.append(conn)
            try:
                self.behave(conn)
            except OSError:
                pass

    def close(self):
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(5)
        for conn in self.conns:
            conn.close()


@pytest.fixture
def hostile():
    made = []

    def make(behave):
        server = HostileServer(behave)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


def flood(conn):
    chunk = b"x" * 65536
    try:
        for _ in range(64):  # 4 MiB at most, never a newline
            conn.sendall(chunk)
    except OSError:
        pass


def test_a_read_stops_at_its_byte_limit_when_the_server_floods(hostile):
    server = hostile(flood)
    client = Client(Transcript(), "A", "127.0.0.1", server.port)
    reply = client.read_line(5.0, limit=4096)
    client.close()
    assert reply.end == "limit"
    assert len(reply.data) == 4096


def test_a_read_ends_at_its_deadline_when_the_server_says_nothing(hostile):
    server = hostile(lambda conn: None)
    transcript = Transcript()
    client = Client(transcript, "A", "127.0.0.1", server.port)
    started = time.monotonic()
    reply = client.read_line(0.3)
    took = time.monotonic() - started
    client.close()
    assert reply.end == "timeout" and reply.data == b""
    assert 0.25 <= took < 2.0
    assert transcript.steps[-2]["dir"] == "timeout"
    assert transcript.steps[-2]["text"] == "nothing more within 0.3 s"


def test_bytes_that_are_not_utf8_are_kept_and_shown_escaped(hostile):
    server = hostile(lambda conn: conn.sendall(b"\xff\xfe caf\xc3\xa9\n"))
    transcript = Transcript()
    client = Client(transcript, "A", "127.0.0.1", server.port)
    reply = client.read_line(5.0)
    client.close()
    assert reply.data == b"\xff\xfe caf\xc3\xa9\n"
    assert reply.text == "\ufffd\ufffd café"
    received = next(step for step in transcript.steps if step["dir"] == "received")
    assert received["text"] == "\\xff\\xfe caf\\xc3\\xa9\\n"
    assert received["bytes"] == 9


def test_what_arrives_past_a_line_stays_for_the_next_read(hostile):
    server = hostile(lambda conn: conn.sendall(b"wrong\nright\n"))
    client = Client(Transcript(), "A", "127.0.0.1", server.port)
    first, second = client.read_line(5.0), client.read_line(5.0)
    client.close()
    assert (first.text, second.text) == ("wrong", "right")


def target(port, exercise):
    options = EXERCISES[exercise].option_values({"timeout": 0.2} if exercise == "swap" else None)
    return Target("127.0.0.1", port, options, EXERCISES[exercise].secret_value())


@pytest.mark.parametrize(
    "exercise, behave, words",
    [
        ("swap", lambda conn: conn.close(), "A expected its partner's line"),
        ("secret_number", flood, "A guessing"),
        ("clock", lambda conn: conn.sendall(b"\xff" * 30), "answer is not in ctime() format"),
        (
            "guess_word",
            lambda conn: conn.sendall(b"HTTP/9 teapot\r\n\r\n") or conn.close(),
            "got no HTTP answer",
        ),
    ],
)
def test_a_misbehaving_server_fails_the_check_with_words(hostile, exercise, behave, words):
    server = hostile(behave)
    result = run_check(EXERCISES[exercise].checks[0], target(server.port, exercise))
    assert result.passed is False
    assert words in result.fault
    assert result.transcript, "the transcript shows what happened"


def test_a_server_that_is_gone_fails_the_check_with_words():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: nobody answers
        result = run_check(EXERCISES["clock"].checks[0], target(port, "clock"))
    assert result.passed is False
    assert result.fault == "the connection failed: Connection refused"
