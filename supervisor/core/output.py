"""A server's console: its output read to the end, each line with the PID that wrote it,
into a bounded buffer of numbered lines.

A server's stdout and stderr are the writing ends of Unix stream sockets whose reading
ends ask the kernel for the writer's credentials (SO_PASSCRED): the kernel never glues
the bytes of two writers into one read, so every line is known to come from the server
or from one of its forked children, even when they print at the same moment. Each
writer's partial line waits apart from the others', so two processes' halves never mix.

One huge line or a flood of them never fills memory: a line is cut once, at `max_line`
bytes as it is read (never inside a character), and says how many bytes were cut; only the
last `max_lines` lines are kept; the lines not yet published wait
in the buffer for the manager's next batch. Every line gets a number (`seq`, counted from 0
since the server was first started), so a page that receives the same line in its snapshot
and in a live batch shows it once: a snapshot says where its lines end (`output_seq`), a
batch where its lines begin.
"""

import collections
import socket
import struct
import threading

CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid
CREDENTIALS_SPACE = socket.CMSG_SPACE(CREDENTIALS.size)
READ_SIZE = 65536


class OutputBuffer:
    """The last `max_lines` lines of a server's output, each at most `max_line` characters,
    each numbered and with the PID that wrote it (None when unknown).

    Also keeps the lines not yet published, so the manager can send them in batches.
    """

    def __init__(self, max_lines=5000, max_line=2000):
        self.max_line = max_line
        self._lines = collections.deque(maxlen=max_lines)
        self._pending = collections.deque(maxlen=max_lines)
        self._dropped = 0
        self._seq = 0
        self._lock = threading.Lock()

    def add(self, stream, text, pid=None, cut=0):
        """One line; `cut` is how many bytes of it the reader already dropped. A line
        still longer than `max_line` characters is cut here; either way one notice says
        how many bytes the line lost in all."""
        if len(text) > self.max_line:
            cut += len(text[self.max_line :].encode("utf-8", "surrogateescape"))
            text = text[: self.max_line]
        if cut:
            text += f" … [{cut} bytes cut]"
        with self._lock:
            line = (self._seq, stream, text, pid)
            self._seq += 1
            self._lines.append(line)
            if len(self._pending) == self._pending.maxlen:
                self._dropped += 1
            self._pending.append(line)

    def tail(self, count=None):
        with self._lock:
            lines = [text for _, _, text, _ in self._lines]
        return lines[-count:] if count else lines

    def tail_numbered(self, count):
        """(the last `count` lines, the number of the line after them)."""
        with self._lock:
            return [text for _, _, text, _ in list(self._lines)[-count:]], self._seq

    def take_pending(self, limit=None):
        """The lines not yet published, as [{stream, lines, pids, seq}] in order, and how
        many lines were dropped unsent. With `limit`, a flood sends only its newest
        `limit` lines."""
        with self._lock:
            pending, self._pending = list(self._pending), collections.deque(maxlen=self._pending.maxlen)
            dropped, self._dropped = self._dropped, 0
        if limit is not None and len(pending) > limit:
            dropped += len(pending) - limit
            pending = pending[-limit:]
        return _batches(pending), dropped

    def clear(self):
        with self._lock:
            self._lines.clear()
            self._pending.clear()


def _batches(lines):
    batches = []
    for seq, stream, text, pid in lines:
        last = batches[-1] if batches else None
        if last and last["stream"] == stream and last["seq"] + len(last["lines"]) == seq:
            last["lines"].append(text)
            last["pids"].append(pid)
        else:
            batches.append({"stream": stream, "lines": [text], "pids": [pid], "seq": seq})
    return batches


def console_socket():
    """(reader, writer): a Unix stream socket pair for one output stream of a program. The
    writer becomes the program's stdout or stderr (close it here once the program has it);
    `read_console` reads the reader."""
    reader, writer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    return reader, writer


class _LineCutter:
    """One writer's bytes cut into lines: a line longer than max_line bytes is cut (the rest
    up to its newline discarded and counted; a character the cut would tear in two is
    dropped whole), invalid UTF-8 becomes U+FFFD, a trailing \\r is dropped."""

    def __init__(self, max_line):
        self.max_line = max_line
        self.partial = bytearray()
        self.cut = 0

    def feed(self, chunk, emit):
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            room = max(0, self.max_line - len(self.partial))
            self.partial += piece[:room]
            self.cut += max(0, len(piece) - room)
            if end < 0:
                return
            self.end(emit)
            start = end + 1

    def end(self, emit):
        """emit(text, cut): the line, and how many bytes of it were cut."""
        raw, cut = self.partial, self.cut
        if cut:
            torn = _torn_tail(raw)
            cut += torn
            raw = raw[: len(raw) - torn]
        else:
            raw = raw.rstrip(b"\r")
        emit(bytes(raw).decode("utf-8", "replace"), cut)
        self.partial = bytearray()
        self.cut = 0

    @property
    def empty(self):
        return not self.partial and not self.cut


def _torn_tail(raw):
    """How many bytes at the end of raw are the start of a UTF-8 character without its end."""
    for back in range(1, min(4, len(raw)) + 1):
        byte = raw[-back]
        if byte & 0xC0 == 0x80:
            continue  # a continuation byte: look further back for its lead
        needs = 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4 if byte >> 3 == 0b11110 else 1
        return back if needs > back else 0
    return 0


def read_console(sock, on_line, max_line):
    """Read a console socket to EOF, calling on_line(pid, text, cut) per line: pid is the
    process that wrote it, cut how many bytes of the line were cut (see _LineCutter). A
    last line without a newline is still delivered."""
    writers = {}  # pid -> _LineCutter, only while that writer has a partial line
    while True:
        try:
            data, ancillary, _, _ = sock.recvmsg(READ_SIZE, CREDENTIALS_SPACE)
        except OSError:
            break
        if not data:
            break
        pid = _writer_of(ancillary)
        cutter = writers.pop(pid, None) or _LineCutter(max_line)
        cutter.feed(data, lambda text, cut, pid=pid: on_line(pid, text, cut))
        if not cutter.empty:
            writers[pid] = cutter
    for pid, cutter in writers.items():
        cutter.end(lambda text, cut, pid=pid: on_line(pid, text, cut))
    sock.close()


def _writer_of(ancillary):
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(data) >= CREDENTIALS.size:
            pid = CREDENTIALS.unpack_from(data)[0]
            return pid or None
    return None
