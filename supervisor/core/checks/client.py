"""A check's real client and its transcript: every byte sent and received, with its time.

The client never trusts the server: every wait has a deadline, every read a byte limit,
and what comes back is kept as bytes (shown escaped when it is not plain ASCII).
"""

import dataclasses
import select
import socket
import time

READ_LIMIT = 64 * 1024
CONNECT_TIMEOUT = 5.0


def shown_bytes(data):
    """Bytes as a transcript shows them: printable ASCII as is, the rest escaped."""
    return data.decode("latin-1").encode("unicode_escape").decode("ascii")


class Transcript:
    """What every client of one check did, in order, with milliseconds since it began.

    Each step is {ms, who, dir, bytes, text}; `dir` is one of connect, sent, received,
    eof, timeout, limit, reset, shutdown, closed, note."""

    def __init__(self):
        self.started = time.monotonic()
        self.steps = []

    def add(self, who, direction, data=b"", text=""):
        self.steps.append(
            {
                "ms": round((time.monotonic() - self.started) * 1000, 1),
                "who": who,
                "dir": direction,
                "bytes": len(data),
                "text": shown_bytes(data) if data else text,
            }
        )

    def note(self, text, who=""):
        self.add(who, "note", text=text)

    def elapsed(self):
        return time.monotonic() - self.started


@dataclasses.dataclass(frozen=True)
class Reply:
    """What one read brought: the bytes, and why it ended — `complete` (what was wanted
    came), `eof`, `timeout`, `limit` or `reset`."""

    data: bytes
    end: str

    @property
    def line(self):
        return self.data.rstrip(b"\r\n")

    @property
    def text(self):
        return self.line.decode("utf-8", "replace").strip()


def cut_at_line(buffer):
    at = buffer.find(b"\n")
    return at + 1 if at >= 0 else None


class Client:
    """One TCP connection to the server under check, every step written to the transcript."""

    def __init__(self, transcript, who, host, port, timeout=CONNECT_TIMEOUT):
        self.transcript = transcript
        self.who = who
        self._buffer = b""
        self.closed = False
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            transcript.add(who, "reset", text=f"could not connect: {exc.strerror or exc}")
            raise
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = self.sock.getsockname()[1]
        transcript.add(who, "connect", text=f"from port {self.port}")

    def send(self, data):
        try:
            self.sock.settimeout(CONNECT_TIMEOUT)
            self.sock.sendall(data)
        except OSError as exc:
            self.transcript.add(self.who, "reset", text=f"could not send: {exc.strerror or exc}")
            raise
        self.transcript.add(self.who, "sent", data)

    def send_pieces(self, data, sizes, pause):
        """Send data in pieces of `sizes` bytes, `pause` seconds apart; returns what the
        server sent back before the last piece went out (it should have waited)."""
        at = 0
        for number, size in enumerate(sizes):
            if number:
                early = self._receive_for(pause)
                if early:
                    return early  # no use sending the rest: it answered (or closed) already
            self.send(data[at : at + size])
            at += size
        return b""

    def _receive_for(self, seconds):
        """Whatever arrives within `seconds` (kept for the next read too)."""
        deadline = time.monotonic() + seconds
        got = b""
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                break
            try:
                chunk = self.sock.recv(4096)
            except OSError:
                break
            if not chunk:
                break
            self.transcript.add(self.who, "received", chunk)
            got += chunk
        self._buffer += got
        return got

    def read(self, cut, timeout, limit=READ_LIMIT):
        """Read until cut(buffer) names where a whole answer ends, the server closes, the
        deadline passes or `limit` bytes came. Bytes past the cut stay for the next read."""
        deadline = time.monotonic() + timeout
        end = None
        while end is None:
            at = cut(self._buffer)
            if at is not None:
                data, self._buffer = self._buffer[:at], self._buffer[at:]
                return Reply(data, "complete")
            if len(self._buffer) >= limit:
                end = "limit"
                break
            left = deadline - time.monotonic()
            if left <= 0:
                end = "timeout"
                break
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(min(65536, limit - len(self._buffer)))
            except TimeoutError:
                end = "timeout"
                break
            except OSError as exc:
                self.transcript.add(self.who, "reset", text=exc.strerror or str(exc))
                data, self._buffer = self._buffer, b""
                return Reply(data, "reset")
            if not chunk:
                end = "eof"
                break
            self.transcript.add(self.who, "received", chunk)
            self._buffer += chunk
        words = {
            "timeout": f"nothing more within {timeout:g} s",
            "limit": f"stopped reading at {limit} bytes",
        }
        self.transcript.add(self.who, end, text=words.get(end, "the server closed the connection"))
        data, self._buffer = self._buffer, b""
        return Reply(data, end)

    def read_line(self, timeout, limit=4096):
        return self.read(cut_at_line, timeout, limit)

    def read_to_eof(self, timeout, limit=READ_LIMIT):
        return self.read(lambda buffer: None, timeout, limit)

    def shutdown_write(self):
        """Close our sending side: the server reads EOF, we can still read its answer."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.transcript.add(self.who, "shutdown", text="closed its sending side")

    def close(self):
        if not self.closed:
            self.closed = True
            self.sock.close()
            self.transcript.add(self.who, "closed", text="closed the connection")
