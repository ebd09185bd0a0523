"""Clients that ask the lecture's question over TCP, UDP, a Unix stream or a Unix datagram
socket, each timed (when it asked, was connected, got its answer) with its transcript.
A server that solves another exercise is spoken to in its own protocol (`SPEECHES`): one
guess of the secret number, one line to swap, one HTTP request for guess the word.

A comparison runs several at once (`run_clients`) against each side; the page's "Ask the
time" runs one (`ask`). Every wait has a deadline and every read a byte limit; a network
error is an outcome, never an exception: what a real client would get (connection
refused, reset, no answer) is what the chart and the transcript show.
"""

import dataclasses
import socket
import threading
import time
from collections.abc import Callable

from supervisor.core.checks.client import shown_bytes

QUESTION = b"What is the time?".ljust(25)
ANSWER_SIZE = 25
RECEIVE_LIMIT = 4096
MAX_CLIENTS = 8
ANSWERED, WAITING = "answered", "waiting"


@dataclasses.dataclass(frozen=True)
class Speech:
    """What a client says, and when and whether what comes back is an answer: `until` is
    "clock" (25 bytes or a newline), "line" (a newline) or "eof" (the server closes)."""

    question: bytes
    until: str
    answered: Callable

    def is_whole(self, data):
        if self.until == "clock":
            return len(data) >= ANSWER_SIZE or data.endswith(b"\n")
        return self.until == "line" and data.endswith(b"\n")


SPEECHES = {
    "clock": Speech(QUESTION, "clock", lambda data: len(data) == ANSWER_SIZE and data.endswith(b"\n")),
    "guess": Speech(b"50\n", "line", lambda data: data.endswith(b"\n")),
    "line": Speech(b"forkwatch\n", "line", lambda data: data.endswith(b"\n")),
    "http": Speech(
        b"GET /forkwatch HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", "eof", lambda data: data.startswith(b"HTTP/")
    ),
}
# What a server's clients say, by the exercise it solves (the clock's question otherwise).
SPOKEN_TO = {"secret_number": "guess", "swap": "line", "guess_word": "http"}


@dataclasses.dataclass(frozen=True)
class Address:
    """Where a server listens: kind is tcp, udp, unix (stream) or unix_dgram; `speaks` is
    what its clients say (a key of SPEECHES)."""

    kind: str
    port: int | None = None
    path: str | None = None
    host: str = "127.0.0.1"
    speaks: str = "clock"

    @property
    def words(self):
        return self.path if self.kind.startswith("unix") else f"{self.host}:{self.port}"

    @property
    def stream(self):
        return self.kind in ("tcp", "unix")

    def target(self):
        return self.path if self.kind.startswith("unix") else (self.host, self.port)

    def new_socket(self):
        family = socket.AF_UNIX if self.kind.startswith("unix") else socket.AF_INET
        return socket.socket(family, socket.SOCK_STREAM if self.stream else socket.SOCK_DGRAM)


def transcript_text(data):
    """Bytes as a transcript shows them: printable ASCII as is (spaces as ·), the rest escaped."""
    return shown_bytes(data).replace(" ", "·")


class Asking:
    """One client's exchange: times in seconds since `t0` (the start both sides share),
    its outcome, the answer and each step with its milliseconds."""

    def __init__(self, index, t0):
        self.index = index
        self.t0 = t0
        self.asked = self.connected = self.answered = None
        self.outcome = WAITING
        self.answer = None
        self.steps = []

    def now(self):
        return round(time.monotonic() - self.t0, 4)

    def step(self, direction, data=b"", text=None):
        self.steps.append(
            {
                "dir": direction,
                "bytes": len(data),
                "text": transcript_text(data) if text is None else text,
                "ms": round(self.now() * 1000, 1),
            }
        )

    def as_dict(self):
        return {
            "index": self.index,
            "asked": self.asked,
            "connected": self.connected,
            "answered": self.answered,
            "outcome": self.outcome,
            "answer": self.answer,
        }


def _receive(sock, stream, speech):
    if not stream:
        return sock.recv(RECEIVE_LIMIT)
    data = b""
    while len(data) < RECEIVE_LIMIT and not speech.is_whole(data):
        chunk = sock.recv(RECEIVE_LIMIT - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _exchange(address, asking, sock, on_connected, on_answer):
    target = address.target()
    speech = SPEECHES[address.speaks]
    if address.stream:
        asking.step("connect", text=f"connect() to {address.words}")
        sock.connect(target)
        asking.connected = asking.now()
        asking.step("connected", text="accepted: a connection of its own")
        if on_connected:
            on_connected(sock)
        sock.sendall(speech.question)
    else:
        if address.kind == "unix_dgram":
            sock.bind("")  # an address of its own (the kernel picks one): the server answers to it
            asking.step(
                "note", text=f"bind() to {transcript_text(sock.getsockname())}: where the answer goes"
            )
        asking.step("note", text=f"no connection: sendto() names {address.words} with the datagram")
        sock.sendto(speech.question, target)
    asking.step("sent", speech.question)
    data = _receive(sock, address.stream, speech)
    asking.answered = asking.now()
    asking.step("received" if data else "eof", data, None if data else "the server closed: no answer")
    if on_answer:
        on_answer(asking)
    text = data.decode("utf-8", "replace").strip()
    if speech.until == "eof":
        text = text.splitlines()[0] if text else text  # an HTTP answer: its status line
    if speech.answered(data):
        asking.outcome, asking.answer = ANSWERED, text
    elif data:
        asking.outcome, asking.answer = "other", text
    else:
        asking.outcome, asking.answer = "closed", "closed without an answer"


def ask(address, asking, timeout, on_connected=None, on_answer=None):
    """Ask the time once over `address`, filling in `asking`; returns it. `on_connected(sock)`
    runs once a stream is connected, `on_answer(asking)` once the answer is in and before
    the socket closes (the server's child still serves it then)."""
    if asking.asked is None:
        asking.asked = asking.now()
    try:
        with address.new_socket() as sock:
            sock.settimeout(timeout)
            _exchange(address, asking, sock, on_connected, on_answer)
    except FileNotFoundError:
        _failed(asking, "refused", f"no such socket file {address.path}: nobody listens there")
    except ConnectionRefusedError:
        _failed(asking, "refused", f"connection refused: nobody listens on {address.words}")
    except ConnectionResetError:
        _failed(asking, "reset", "connection reset: the server closed it without an answer")
    except TimeoutError:
        _failed(asking, "timeout", f"no answer within {timeout:g} s")
    except OSError as exc:
        _failed(asking, "error", f"{exc.strerror or exc}")
    return asking


def _failed(asking, outcome, text):
    asking.answered = asking.now()
    asking.outcome, asking.answer = outcome, text
    asking.step("error", text=text)


def new_askings(count, t0=None):
    """`count` clients' Askings (at most MAX_CLIENTS) sharing one start time."""
    if not 1 <= count <= MAX_CLIENTS:
        raise ValueError(f"clients must be from 1 to {MAX_CLIENTS}")
    t0 = time.monotonic() if t0 is None else t0
    return [Asking(index, t0) for index in range(count)]


def run_clients(address, askings, timeout, stagger=0.0, on_change=None, on_answer=None):
    """One client per Asking: all at once, or one every `stagger` seconds; each asks once.
    Returns once every one is done or past its deadline. `on_change(asking)` runs when one
    asks and when it is done."""
    barrier = threading.Barrier(len(askings))

    def client(asking):
        try:
            barrier.wait(timeout)
        except threading.BrokenBarrierError:
            pass
        if stagger:
            time.sleep(stagger * asking.index)
        asking.asked = asking.now()
        if on_change:
            on_change(asking)
        ask(address, asking, timeout, on_answer=on_answer)
        if on_change:
            on_change(asking)

    threads = [
        threading.Thread(target=client, args=(a,), daemon=True, name=f"load-{a.index}") for a in askings
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout + stagger * len(askings) + 5.0
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return askings
