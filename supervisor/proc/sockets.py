"""What a process's sockets are: one path that lists each socket of a process (its kind,
local and peer address, whether it listens), asked of the socket itself where allowed,
else read from the kernel's tables in /proc/net (or psutil without /proc). Readiness
("does the server listen yet?") and a forked child's client both come from here.
"""

import dataclasses
import errno
import os
import socket
import time

import psutil

from supervisor.proc.host import last_errno, libc
from supervisor.proc.stat import HAS_PROCFS, PROC, cmdline_of

SYS_PIDFD_GETFD = 438  # the same number on every Linux architecture
TCP_LISTEN = "0A"
SO_ACCEPTCON = 0x10000  # the "listening" flag in /proc/net/unix
_NOT_ALLOWED = (errno.EPERM, errno.ENOSYS, errno.EACCES)


@dataclasses.dataclass(frozen=True)
class SocketInfo:
    """One socket of a process: kind is tcp, udp or unix; addresses are (host, port) or a path."""

    kind: str
    local: object
    peer: object = None
    listening: bool = False


def socket_of(pid, fd, inode, tables=None):
    """SocketInfo of pid's descriptor fd (a socket with this inode): asked of the socket
    itself, else looked up in the kernel's tables (`tables`, a SocketTables callers share
    so the tables are read at most once per its ttl). None when gone or of another family."""
    try:
        return _ask_socket(pid, fd)
    except PermissionError:
        return (tables or SocketTables(ttl=0)).find(inode)


class SocketTables:
    """The kernel's socket tables by inode, read at most once per `ttl` seconds for every
    caller together, never once per process."""

    def __init__(self, ttl=1.0):
        self.ttl = ttl
        self._by_inode = {}
        self._read_at = None

    def find(self, inode):
        if inode not in self._by_inode:
            now = time.monotonic()
            if self._read_at is None or now - self._read_at >= self.ttl:
                self._read_at = now
                self._by_inode = _table_infos()
        return self._by_inode.get(inode)


def sockets_of(pid):
    """[SocketInfo] of pid's sockets; [] when it has none or is gone."""
    if not HAS_PROCFS:
        return _from_psutil(pid)
    links = _socket_links(pid)
    try:
        return [info for info in (_ask_socket(pid, fd) for fd, _ in links) if info is not None]
    except PermissionError:
        return _from_tables({inode for _, inode in links})


def listens(pid, port=None, unix_path=None):
    """True when pid has a listening (or bound datagram) socket on port / at unix_path."""
    for info in sockets_of(pid):
        if unix_path:
            if info.kind == "unix" and info.local == unix_path:
                return True
        elif info.kind in ("tcp", "udp") and info.local and info.local[1] == port:
            if info.kind == "udp" or info.listening:
                return True
    return False


def connected_peers(pid):
    """(host, port) of the far end of each of pid's connected TCP sockets: the client a
    forked child serves, or the copies of client sockets a parent still holds."""
    return [
        info.peer
        for info in sockets_of(pid)
        if info.kind == "tcp" and not info.listening and info.peer and info.peer[1] != 0
    ]


def peer_of(pid):
    """'host:port' of the client a forked child serves (its connected TCP socket)."""
    peers = connected_peers(pid)
    return f"{peers[0][0]}:{peers[0][1]}" if peers else None


def address_towards(pid, port):
    """'host:port' of pid's own end of a TCP connection to `port`: a client's address, the
    very peer the server's child that serves it has."""
    for info in sockets_of(pid):
        if info.kind == "tcp" and info.peer and info.peer[1] == port and info.local:
            return f"{info.local[0]}:{info.local[1]}"
    return None


def port_holder(port, udp=False):
    """(pid, command line) of the process listening on port, or None."""
    kind = "udp" if udp else "tcp"
    try:
        conns = psutil.net_connections(kind=kind)
    except (psutil.AccessDenied, OSError):
        return None
    for conn in conns:
        if conn.laddr and conn.laddr.port == port and (udp or conn.status == psutil.CONN_LISTEN):
            if conn.pid:
                return conn.pid, cmdline_of(conn.pid)
    return None


# --- asked of the socket itself ------------------------------------------------------------


def _socket_links(pid):
    """(fd, inode) of each of pid's sockets, from /proc/PID/fd."""
    found = []
    try:
        for fd in os.listdir(f"{PROC}/{pid}/fd"):
            try:
                target = os.readlink(f"{PROC}/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                found.append((int(fd), int(target[8:-1])))
    except (FileNotFoundError, PermissionError, ProcessLookupError):
        pass
    return found


def _borrow(pid, fd):
    """A duplicate of pid's descriptor fd (pidfd_getfd). Asking a socket its addresses this
    way costs microseconds; /proc/net/tcp costs milliseconds (the kernel walks its whole
    socket table). PermissionError when not allowed; None when the descriptor is gone."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    try:
        dup = libc().syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
    finally:
        os.close(pidfd)
    if dup < 0:
        code = last_errno()
        if code in _NOT_ALLOWED:
            raise PermissionError(code, "pidfd_getfd is not allowed")
        return None
    return socket.socket(fileno=dup)


def _ask_socket(pid, fd):
    sock = _borrow(pid, fd)
    if sock is None:
        return None
    with sock:
        if sock.family not in (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6):
            return None
        if sock.type == socket.SOCK_DGRAM and sock.family != socket.AF_UNIX:
            return SocketInfo("udp", _address(sock.getsockname()))
        listening = bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
        if sock.family == socket.AF_UNIX:
            try:
                peer = None if listening else _unix_name(sock.getpeername())
            except OSError:
                peer = None
            return SocketInfo("unix", _unix_name(sock.getsockname()), peer, listening)
        try:
            peer = None if listening else _address(sock.getpeername())
        except OSError:
            peer = None  # not connected
        return SocketInfo("tcp", _address(sock.getsockname()), peer, listening)


def _unix_name(name):
    """A unix socket's name as text: a path, '@name' for the abstract namespace, None unnamed."""
    if isinstance(name, bytes):
        name = (
            "@" + name[1:].decode("utf-8", "replace")
            if name[:1] == b"\0"
            else name.decode("utf-8", "replace")
        )
    return name or None


def _address(address):
    host, port = address[:2]
    return (host[7:] if host.startswith("::ffff:") else host), port


# --- read from the kernel's tables -----------------------------------------------------------


def _from_tables(inodes):
    return [info for inode, info in _table_infos().items() if inode in inodes] if inodes else []


def _table_infos():
    """{inode: SocketInfo} of every socket of the machine, from /proc/net."""
    found = {}
    for kind in ("tcp", "tcp6", "udp", "udp6"):
        v6 = kind.endswith("6")
        for parts in _table_rows(kind):
            peer = _hex_address(parts[2], v6)
            found[int(parts[9])] = SocketInfo(
                kind[:3],
                _hex_address(parts[1], v6),
                peer if peer[1] != 0 else None,
                kind.startswith("tcp") and parts[3] == TCP_LISTEN,
            )
    for parts in _table_rows("unix"):
        if len(parts) >= 7:
            path = parts[7] if len(parts) > 7 else None
            found[int(parts[6])] = SocketInfo("unix", path, None, bool(int(parts[3], 16) & SO_ACCEPTCON))
    return found


def _table_rows(kind):
    try:
        with open(f"{PROC}/net/{kind}") as handle:
            next(handle)
            return [line.split() for line in handle]
    except FileNotFoundError:
        return []


def _hex_address(text, v6):
    host_hex, port_hex = text.split(":")
    port = int(port_hex, 16)
    raw = bytes.fromhex(host_hex)
    if v6:
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
        return _address((socket.inet_ntop(socket.AF_INET6, raw), port))
    return socket.inet_ntop(socket.AF_INET, raw[::-1]), port


def _from_psutil(pid):
    try:
        conns = psutil.Process(pid).net_connections(kind="all")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []
    found = []
    for conn in conns:
        if conn.family == socket.AF_UNIX:
            found.append(SocketInfo("unix", conn.laddr))
        elif conn.laddr:
            kind = "udp" if conn.type == socket.SOCK_DGRAM else "tcp"
            peer = tuple(conn.raddr) if conn.raddr else None
            listening = conn.status == psutil.CONN_LISTEN
            found.append(SocketInfo(kind, tuple(conn.laddr), peer, listening))
    return found
