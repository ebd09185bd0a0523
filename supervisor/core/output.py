"""A server's console: its output pipes read to the end into a bounded buffer of lines.

One huge line or a flood of them never fills memory: a line is cut once, at `max_line`
bytes as it is read, and says how many bytes were cut; only the last `max_lines` lines
are kept; the lines not yet published wait in the buffer for the manager's next batch.
"""

import collections
import os
import threading


class OutputBuffer:
    """The last `max_lines` lines of a server's output, each at most `max_line` characters.

    Also keeps the lines not yet published, so the manager can send them in batches.
    """

    def __init__(self, max_lines=5000, max_line=2000):
        self.max_line = max_line
        self._lines = collections.deque(maxlen=max_lines)
        self._pending = collections.deque(maxlen=max_lines)
        self._dropped = 0
        self._lock = threading.Lock()

    def add(self, stream, text, cut=0):
        """One line; `cut` is how many bytes of it the reader already dropped. A line
        still longer than `max_line` characters is cut here; either way one notice says
        how many bytes the line lost in all."""
        if len(text) > self.max_line:
            cut += len(text[self.max_line :].encode("utf-8", "surrogateescape"))
            text = text[: self.max_line]
        if cut:
            text += f" … [{cut} bytes cut]"
        with self._lock:
            self._lines.append((stream, text))
            if len(self._pending) == self._pending.maxlen:
                self._dropped += 1
            self._pending.append((stream, text))

    def tail(self, count=None):
        with self._lock:
            lines = [text for _, text in self._lines]
        return lines[-count:] if count else lines

    def take_pending(self, limit=None):
        """[(stream, [lines])] in order, and how many lines were dropped unsent. With
        `limit`, a flood sends only its newest `limit` lines."""
        with self._lock:
            pending, self._pending = list(self._pending), collections.deque(maxlen=self._pending.maxlen)
            dropped, self._dropped = self._dropped, 0
        if limit is not None and len(pending) > limit:
            dropped += len(pending) - limit
            pending = pending[-limit:]
        batches = []
        for stream, text in pending:
            if batches and batches[-1][0] == stream:
                batches[-1][1].append(text)
            else:
                batches.append((stream, [text]))
        return batches, dropped

    def clear(self):
        with self._lock:
            self._lines.clear()
            self._pending.clear()


def read_lines(pipe, on_line, max_line):
    """Read a pipe to EOF, calling on_line(text, cut) per line: text is at most max_line
    bytes of the line (never half a character), cut how many bytes of it were dropped, so
    one huge line never fills memory; invalid UTF-8 becomes U+FFFD; a last line without a
    newline is still delivered."""
    fd = pipe.fileno()
    partial = bytearray()
    cut = 0
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            room = max(0, max_line - len(partial))
            partial += piece[:room]
            cut += max(0, len(piece) - room)
            if end < 0:
                break
            on_line(*_line_text(partial, cut))
            partial.clear()
            cut = 0
            start = end + 1
    if partial or cut:
        on_line(*_line_text(partial, cut))
    pipe.close()


def _line_text(raw, cut):
    """(text, bytes cut) of a line read whole or cut at max_line: a character the cut
    split in two is dropped whole, and counted."""
    if cut:
        torn = _torn_tail(raw)
        cut += torn
        raw = raw[: len(raw) - torn]
    else:
        raw = raw.rstrip(b"\r")
    return bytes(raw).decode("utf-8", "replace"), cut


def _torn_tail(raw):
    """How many bytes at the end of raw are the start of a UTF-8 character without its end."""
    for back in range(1, min(4, len(raw)) + 1):
        byte = raw[-back]
        if byte & 0xC0 == 0x80:
            continue  # a continuation byte: look further back for its lead
        needs = 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4 if byte >> 3 == 0b11110 else 1
        return back if needs > back else 0
    return 0
