"""What a process's sockets are: one path that lists each socket of a process (its kind,
local and peer address, whether it listens), asked of the socket itself where allowed,
else read from the kernel's tables in /proc/net (or psutil without /proc). Readiness
("does the server listen yet?") and a forked child's client both come from here.
"""

import dataclasses
import errno
import os
import socket

import psutil

from supervisor.proc.host import last_errno, libc
from supervisor.proc.stat import HAS_PROCFS, PROC, cmdline_of

SYS_PIDFD_GETFD = 438  # the same number on every Linux architecture
TCP_LISTEN = "0A"
_NOT_ALLOWED = (errno.EPERM, errno.ENOSYS, errno.EACCES)


@dataclasses.dataclass(frozen=True)
class SocketInfo:
    """One socket of a process: kind is tcp, udp or unix; addresses are (host, port) or a path."""

    kind: str
    local: object
    peer: object = None
    listening: bool = False


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


def peer_of(pid):
    """'host:port' of the client a forked child serves (its connected TCP socket)."""
    for info in sockets_of(pid):
        if info.kind == "tcp" and not info.listening and info.peer and info.peer[1] != 0:
            return f"{info.peer[0]}:{info.peer[1]}"
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
        if sock.family == socket.AF_UNIX:
            return SocketInfo("unix", sock.getsockname())
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return None
        if sock.type == socket.SOCK_DGRAM:
            return SocketInfo("udp", _address(sock.getsockname()))
        listening = bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
        try:
            peer = None if listening else _address(sock.getpeername())
        except OSError:
            peer = None  # not connected
        return SocketInfo("tcp", _address(sock.getsockname()), peer, listening)


def _address(address):
    host, port = address[:2]
    return (host[7:] if host.startswith("::ffff:") else host), port


# --- read from the kernel's tables -----------------------------------------------------------


def _from_tables(inodes):
    if not inodes:
        return []
    found = []
    for kind in ("tcp", "tcp6", "udp", "udp6"):
        for parts in _table_rows(kind):
            if int(parts[9]) in inodes:
                v6 = kind.endswith("6")
                peer = _hex_address(parts[2], v6)
                found.append(
                    SocketInfo(
                        kind[:3],
                        _hex_address(parts[1], v6),
                        peer if peer[1] != 0 else None,
                        kind.startswith("tcp") and parts[3] == TCP_LISTEN,
                    )
                )
    for parts in _table_rows("unix"):
        if len(parts) >= 8 and int(parts[6]) in inodes:
            found.append(SocketInfo("unix", parts[7]))
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
