"""What a process's file descriptor is: its listening socket :PORT, a connection with PEER,
a unix socket path, a pipe, a terminal, stdin.

A socket is described from what supervisor/proc/sockets.py says of it: asked of the socket
itself through a duplicate borrowed with pidfd_getfd, or, where borrowing is refused, from
the kernel's socket tables (/proc/net/tcp*, /proc/net/unix), read at most once per
`table_ttl` for every process together, never per process.

Answers are cached per (pid, start ticks, fd, link): the link (`socket:[INODE]`,
`pipe:[INODE]`, a path) changes whenever the descriptor number is reused for something
else, so one readlink per reading tells whether the cached answer still holds.
"""

import dataclasses
import os

from supervisor.proc import sockets
from supervisor.proc.stat import PROC

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


def describe_socket(fd, info):
    """An FdTarget for a socket, from its sockets.SocketInfo."""
    if info is None:
        return FdTarget(fd, SOCKET, "socket")
    if info.kind == "unix":
        path = info.local or info.peer
        if info.listening:
            return FdTarget(fd, LISTENING, f"listening unix socket {path}", path=path)
        return FdTarget(fd, UNIX, f"unix socket {path}" if path else "unix socket", path=path)
    port = info.local[1] if info.local else None
    if info.kind == "udp":
        return FdTarget(fd, DATAGRAM, f"udp socket :{port}", port=port)
    if info.listening:
        return FdTarget(fd, LISTENING, f"listening socket :{port}", port=port)
    if info.peer:
        peer = f"{info.peer[0]}:{info.peer[1]}"
        return FdTarget(fd, CONNECTION, f"connection with {peer}", port=port, peer=peer)
    return FdTarget(fd, SOCKET, f"tcp socket :{port}", port=port)


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
        self._tables = sockets.SocketTables(table_ttl)

    def target(self, pid, start_ticks, fd):
        """What pid's descriptor fd is now, or None when it is closed or cannot be seen."""
        try:
            link = os.readlink(f"{PROC}/{pid}/fd/{fd}")
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
        return describe_socket(fd, sockets.socket_of(pid, fd, inode, self._tables))

    def from_tables(self, fd, inode):
        """What the kernel's socket tables say socket `inode` is (where borrowing is refused)."""
        return describe_socket(fd, self._tables.find(inode))
