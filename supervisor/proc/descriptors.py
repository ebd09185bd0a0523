"""What a process's file descriptor is: its listening socket :PORT, a connection with PEER,
a unix socket path, a pipe, a terminal, stdin.

A socket is asked its own addresses through a duplicate of it, borrowed with pidfd_getfd
by supervisor/proctree.py's socket helpers (they move to supervisor/proc/sockets.py). Where
borrowing is refused, the kernel's socket tables (/proc/net/tcp*, /proc/net/unix) are read
instead, at most once per `table_ttl` for every process together, never per process.

Answers are cached per (pid, start ticks, fd, link): the link (`socket:[INODE]`,
`pipe:[INODE]`, a path) changes whenever the descriptor number is reused for something
else, so one readlink per reading tells whether the cached answer still holds.
"""

import dataclasses
import os
import socket
import time

from supervisor import proctree

LISTENING = "listening"
CONNECTION = "connection"
DATAGRAM = "datagram"
UNIX = "unix"
SOCKET = "socket"  # a socket not yet listening nor connected: not cached, it will change
PIPE = "pipe"
TERMINAL = "terminal"
FILE = "file"
OTHER = "other"

STDIO = {0: "stdin", 1: "stdout", 2: "stderr"}
SO_ACCEPTCON = 0x10000  # the "listening" flag in /proc/net/unix
MAX_CACHED = 20000


@dataclasses.dataclass(frozen=True)
class FdTarget:
    """One descriptor of a process, in words (`text`) and in parts."""

    fd: int
    kind: str
    text: str
    port: int | None = None
    peer: str | None = None
    path: str | None = None


def _with_stdio(fd, text):
    name = STDIO.get(fd)
    return f"{name} ({text})" if name else text


def _host_port(host, port):
    if host.startswith("::ffff:"):
        host = host[7:]
    return f"{host}:{port}"


def _unix_name(name):
    if isinstance(name, bytes):
        name = (
            "@" + name[1:].decode("utf-8", "replace")
            if name[:1] == b"\0"
            else name.decode("utf-8", "replace")
        )
    return name or None


def describe_socket(fd, sock):
    """An FdTarget for a socket object (ours, or one borrowed from another process)."""
    listening = bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        port = sock.getsockname()[1]
        if sock.type == socket.SOCK_DGRAM:
            return FdTarget(fd, DATAGRAM, f"udp socket :{port}", port=port)
        if listening:
            return FdTarget(fd, LISTENING, f"listening socket :{port}", port=port)
        try:
            peer = _host_port(*sock.getpeername()[:2])
        except OSError:
            return FdTarget(fd, SOCKET, f"tcp socket :{port}", port=port)
        return FdTarget(fd, CONNECTION, f"connection with {peer}", port=port, peer=peer)
    if sock.family == socket.AF_UNIX:
        path = _unix_name(sock.getsockname())
        if listening:
            return FdTarget(fd, LISTENING, f"listening unix socket {path}", path=path)
        try:
            path = path or _unix_name(sock.getpeername())
        except OSError:
            pass
        return FdTarget(fd, UNIX, f"unix socket {path}" if path else "unix socket", path=path)
    return FdTarget(fd, OTHER, f"socket (family {int(sock.family)})")


def describe_link(fd, link):
    """An FdTarget for what /proc/PID/fd/FD links to, sockets aside."""
    if link.startswith("pipe:["):
        return FdTarget(fd, PIPE, _with_stdio(fd, "pipe"))
    if link.startswith(("/dev/pts/", "/dev/tty")) or link == "/dev/console":
        return FdTarget(fd, TERMINAL, _with_stdio(fd, f"terminal {link}"), path=link)
    if link.startswith("anon_inode:"):
        return FdTarget(fd, OTHER, _with_stdio(fd, link[len("anon_inode:") :].strip("[]")))
    if link.startswith("/"):
        return FdTarget(fd, FILE, _with_stdio(fd, link), path=link)
    return FdTarget(fd, OTHER, _with_stdio(fd, link))


class Descriptors:
    """fd → FdTarget for any process, cached by identity and link."""

    def __init__(self, table_ttl=1.0):
        self.table_ttl = table_ttl
        self._cache = {}  # (pid, start_ticks, fd, link) -> FdTarget
        self._inet = {}
        self._unix = {}
        self._tables_read = None  # monotonic time of the last read of the kernel's tables

    def target(self, pid, start_ticks, fd):
        """What pid's descriptor fd is now, or None when it is closed or cannot be seen."""
        try:
            link = os.readlink(f"{proctree.PROC}/{pid}/fd/{fd}")
        except OSError:
            return None
        key = (pid, start_ticks, fd, link)
        found = self._cache.get(key)
        if found is None:
            found = (
                self._socket(pid, fd, int(link[8:-1]))
                if link.startswith("socket:[")
                else describe_link(fd, link)
            )
            if found.kind != SOCKET:
                if len(self._cache) >= MAX_CACHED:
                    self._cache.clear()
                self._cache[key] = found
        return found

    def prune(self, keep):
        """Forget every process whose (pid, start_ticks) is not in keep."""
        for key in [key for key in self._cache if key[:2] not in keep]:
            del self._cache[key]

    def _socket(self, pid, fd, inode):
        try:
            sock = proctree._borrow_socket(pid, fd)
        except OSError:
            return self.from_tables(fd, inode)
        with sock:
            try:
                return describe_socket(fd, sock)
            except OSError:
                return FdTarget(fd, SOCKET, "socket")

    def from_tables(self, fd, inode):
        """What the kernel's socket tables say socket `inode` is (where borrowing is refused)."""
        if inode not in self._inet and inode not in self._unix:
            self._read_tables()
        if inode in self._inet:
            kind, state, (_, port), remote = self._inet[inode]
            if kind.startswith("udp"):
                return FdTarget(fd, DATAGRAM, f"udp socket :{port}", port=port)
            if state == proctree.TCP_LISTEN:
                return FdTarget(fd, LISTENING, f"listening socket :{port}", port=port)
            if remote[1]:
                peer = _host_port(*remote)
                return FdTarget(fd, CONNECTION, f"connection with {peer}", port=port, peer=peer)
            return FdTarget(fd, SOCKET, f"tcp socket :{port}", port=port)
        if inode in self._unix:
            flags, path = self._unix[inode]
            if flags & SO_ACCEPTCON:
                return FdTarget(fd, LISTENING, f"listening unix socket {path}", path=path)
            return FdTarget(fd, UNIX, f"unix socket {path}" if path else "unix socket", path=path)
        return FdTarget(fd, SOCKET, "socket")

    def _read_tables(self):
        now = time.monotonic()
        if self._tables_read is not None and now - self._tables_read < self.table_ttl:
            return
        self._tables_read = now
        self._inet = proctree.inet_sockets()
        self._unix = unix_sockets()


def unix_sockets():
    """{inode: (flags, path or None)} of the machine's unix sockets, from /proc/net/unix."""
    table = {}
    try:
        with open(f"{proctree.PROC}/net/unix") as handle:
            next(handle)
            for line in handle:
                parts = line.split()
                if len(parts) >= 7:
                    table[int(parts[6])] = (int(parts[3], 16), parts[7] if len(parts) > 7 else None)
    except (OSError, StopIteration, ValueError):
        pass
    return table
