"""Everything forkwatch knows about processes comes from here, and only here: /proc, the
Linux process-event connector (netlink), pidfds, and psutil as the portable fallback.

It hands out plain frozen dataclasses, never psutil objects, and it sends signals only
to a process identified by (pid, create_time), through a pidfd, so a reused PID can never
be hit.
"""

import dataclasses
import errno
import os
import select
import signal
import socket
import struct
import subprocess
import time

import psutil

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TICK = 1.0 / CLOCK_TICKS  # create_time resolution: two readings within one tick are one
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
PROC = "/proc"
HAS_PROCFS = os.path.isdir(os.path.join(PROC, "self"))
STATUS_WORDS = {
    "R": psutil.STATUS_RUNNING,
    "S": psutil.STATUS_SLEEPING,
    "D": psutil.STATUS_DISK_SLEEP,
    "Z": psutil.STATUS_ZOMBIE,
    "T": psutil.STATUS_STOPPED,
    "t": psutil.STATUS_TRACING_STOP,
    "X": psutil.STATUS_DEAD,
    "I": psutil.STATUS_IDLE,
    "P": psutil.STATUS_PARKED,
    "W": psutil.STATUS_WAKING,
}
ZOMBIE = psutil.STATUS_ZOMBIE


@dataclasses.dataclass(frozen=True)
class ProcInfo:
    """One process of a server's tree, as the dashboard shows it."""

    pid: int
    ppid: int
    create_time: float
    name: str
    status: str
    cpu_percent: float
    rss: int
    age_s: float
    peer: str | None = None

    def as_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Stat:
    """The fields of /proc/PID/stat forkwatch uses."""

    pid: int
    name: str
    state: str
    ppid: int
    pgrp: int
    session: int
    cpu_ticks: int
    start_ticks: int
    rss_pages: int

    @property
    def status(self):
        return STATUS_WORDS.get(self.state, "unknown")

    @property
    def create_time(self):
        return boot_time() + self.start_ticks / CLOCK_TICKS


_boot_time = None


def boot_time():
    """Seconds since the epoch at boot, as psutil computes it (create_times agree)."""
    global _boot_time
    if _boot_time is None:
        _boot_time = psutil.boot_time()
    return _boot_time


def read_stat(pid):
    """/proc/PID/stat parsed, or None when the process is gone."""
    try:
        with open(f"{PROC}/{pid}/stat", "rb") as handle:
            raw = handle.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    left = raw.index(b"(")
    right = raw.rindex(b")")
    fields = raw[right + 2 :].split()
    return Stat(
        pid=pid,
        name=raw[left + 1 : right].decode("utf-8", "replace"),
        state=fields[0].decode(),
        ppid=int(fields[1]),
        pgrp=int(fields[2]),
        session=int(fields[3]),
        cpu_ticks=int(fields[11]) + int(fields[12]),
        start_ticks=int(fields[19]),
        rss_pages=int(fields[21]),
    )


def same_time(a, b):
    return abs(a - b) < TICK


def create_time_of(pid):
    if HAS_PROCFS:
        stat = read_stat(pid)
        return stat.create_time if stat else None
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def cmdline_of(pid):
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return ""


def all_pids():
    if HAS_PROCFS:
        return [int(name) for name in os.listdir(PROC) if name.isdigit()]
    return psutil.pids()


def parent_map():
    """{pid: Stat} of every process on the machine (one scan of /proc)."""
    stats = {}
    for pid in all_pids():
        stat = read_stat(pid)
        if stat is not None:
            stats[pid] = stat
    return stats


def descendants(root_pid, stats=None):
    """Stats of every descendant of root_pid (not the root), from one scan."""
    stats = stats if stats is not None else parent_map()
    children = {}
    for stat in stats.values():
        children.setdefault(stat.ppid, []).append(stat)
    found, todo = [], [root_pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child.pid)
    return found


def members(ids, stats=None):
    """Stats of every process whose process group or session is one of `ids`."""
    stats = stats if stats is not None else parent_map()
    return [s for s in stats.values() if s.pgrp in ids or s.session in ids]


# --- signals, by identity ------------------------------------------------------------


class SignalResult:
    SENT = "sent"
    GONE = "gone"
    REUSED = "reused"
    ZOMBIE = "zombie"


def signal_process(pid, create_time, sig):
    """Send sig to pid only if it is still the process created at create_time.

    The pidfd is opened first and the identity checked after: from then on the pidfd
    names that one process, so a PID reused in between cannot receive the signal.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return SignalResult.GONE
    try:
        stat = read_stat(pid)
        if stat is None:
            return SignalResult.GONE
        if not same_time(stat.create_time, create_time):
            return SignalResult.REUSED
        if stat.state == "Z":
            return SignalResult.ZOMBIE
        try:
            signal.pidfd_send_signal(pidfd, sig)
        except ProcessLookupError:
            return SignalResult.GONE
        return SignalResult.SENT
    finally:
        os.close(pidfd)


def signal_group(pgid, sig):
    """Signal a process group; False when it no longer exists."""
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return False


def is_alive(pid, create_time):
    """True while that exact process exists and is not a zombie."""
    stat = read_stat(pid)
    return stat is not None and stat.state != "Z" and same_time(stat.create_time, create_time)


def exists(pid, create_time):
    """True while that exact process exists, zombie or not."""
    stat = read_stat(pid)
    return stat is not None and same_time(stat.create_time, create_time)


# --- sockets ------------------------------------------------------------------------


SYS_PIDFD_GETFD = 438  # the same number on every Linux architecture
_libc = None


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


def _socket_fds(pid):
    """The descriptor numbers of pid's sockets."""
    return [fd for fd, _ in _socket_links(pid)]


def _borrow_socket(pid, fd):
    """A duplicate of pid's socket fd (pidfd_getfd), to ask it its addresses. Reading
    /proc/net/tcp instead costs milliseconds: the kernel walks its whole socket table."""
    global _libc
    if _libc is None:
        import ctypes

        _libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        dup = _libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
    finally:
        os.close(pidfd)
    if dup < 0:
        import ctypes

        raise OSError(ctypes.get_errno(), "pidfd_getfd failed")
    return socket.socket(fileno=dup)


def _borrowed_sockets(pid):
    """Yield duplicates of pid's sockets (each closed after use); OSError if not allowed."""
    for fd in _socket_fds(pid):
        try:
            sock = _borrow_socket(pid, fd)
        except OSError as exc:
            if exc.errno in (errno.EPERM, errno.ENOSYS, errno.EACCES):
                raise
            continue
        with sock:
            yield sock


def _socket_inodes(pid):
    return {inode for _, inode in _socket_links(pid)}


def _hex_address(text, v6):
    host_hex, port_hex = text.split(":")
    port = int(port_hex, 16)
    raw = bytes.fromhex(host_hex)
    if v6:
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
        host = socket.inet_ntop(socket.AF_INET6, raw)
        if host.startswith("::ffff:"):
            host = host[7:]
        return host, port
    return socket.inet_ntop(socket.AF_INET, raw[::-1]), port


def inet_sockets(kinds=("tcp", "tcp6", "udp", "udp6")):
    """{inode: (kind, state, (lhost, lport), (rhost, rport))} for the machine's sockets."""
    table = {}
    for kind in kinds:
        try:
            with open(f"{PROC}/net/{kind}") as handle:
                next(handle)
                for line in handle:
                    parts = line.split()
                    v6 = kind.endswith("6")
                    table[int(parts[9])] = (
                        kind,
                        parts[3],
                        _hex_address(parts[1], v6),
                        _hex_address(parts[2], v6),
                    )
        except FileNotFoundError:
            continue
    return table


TCP_LISTEN = "0A"
TCP_ESTABLISHED = "01"


def listens(pid, port=None, unix_path=None):
    """True when pid has a listening (or bound datagram) socket on port / at unix_path."""
    if not HAS_PROCFS:
        try:
            conns = psutil.Process(pid).net_connections(kind="all")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False
        for conn in conns:
            if unix_path and conn.laddr == unix_path:
                return True
            if port and conn.laddr and getattr(conn.laddr, "port", None) == port:
                return True
        return False
    try:
        for sock in _borrowed_sockets(pid):
            if unix_path:
                if sock.family == socket.AF_UNIX and sock.getsockname() == unix_path:
                    return True
                continue
            if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.getsockname()[1] == port:
                if sock.type == socket.SOCK_DGRAM or sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                    return True
        return False
    except OSError:
        pass  # not allowed to borrow: read the kernel's tables
    inodes = _socket_inodes(pid)
    if not inodes:
        return False
    if unix_path:
        try:
            with open(f"{PROC}/net/unix") as handle:
                next(handle)
                for line in handle:
                    parts = line.split()
                    if len(parts) >= 8 and parts[7] == unix_path and int(parts[6]) in inodes:
                        return True
        except FileNotFoundError:
            return False
        return False
    for inode, (kind, state, local, _) in inet_sockets().items():
        if inode in inodes and local[1] == port:
            if kind.startswith("udp") or state == TCP_LISTEN:
                return True
    return False


def connected_peers(pid, table=None):
    """(host, port) of the far end of each of pid's connected TCP sockets, in fd order:
    the client a forked child serves, or the copies of client sockets a parent still holds."""
    peers = []
    try:
        for sock in _borrowed_sockets(pid):
            if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
                try:
                    host, port = sock.getpeername()[:2]
                except OSError:
                    continue  # the listening socket, or not connected
                peers.append((host[7:] if host.startswith("::ffff:") else host, port))
        return peers
    except OSError:
        peers = []  # not allowed to borrow: read the kernel's tables
    inodes = _socket_inodes(pid)
    if not inodes:
        return peers
    table = table if table is not None else inet_sockets(("tcp", "tcp6"))
    for inode in inodes:
        entry = table.get(inode)
        if entry and entry[1] != TCP_LISTEN and entry[3][1] != 0:
            peers.append(entry[3])
    return peers


def peer_of(pid, table=None):
    """'host:port' of the client a forked child serves (its connected TCP socket)."""
    peers = connected_peers(pid, table)
    return f"{peers[0][0]}:{peers[0][1]}" if peers else None


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


# --- snapshots ----------------------------------------------------------------------


class CpuMeter:
    """cpu% per process from successive tick counts. Keyed by (pid, create_time); the
    first reading of a process is 0.0, like psutil's."""

    def __init__(self):
        self._last = {}

    def percent(self, stat, now):
        key = (stat.pid, stat.start_ticks)
        previous = self._last.get(key)
        self._last[key] = (stat.cpu_ticks, now)
        if previous is None or now <= previous[1]:
            return 0.0
        return round(100.0 * (stat.cpu_ticks - previous[0]) / CLOCK_TICKS / (now - previous[1]), 1)

    def prune(self, keep_keys):
        for key in list(self._last):
            if key not in keep_keys:
                del self._last[key]


def info_from_stat(stat, cpu, now_wall, peer=None):
    created = stat.create_time
    return ProcInfo(
        pid=stat.pid,
        ppid=stat.ppid,
        create_time=round(created, 2),
        name=stat.name,
        status=stat.status,
        cpu_percent=cpu,
        rss=stat.rss_pages * PAGE_SIZE,
        age_s=round(max(0.0, now_wall - created), 1),
        peer=peer,
    )


# --- the Linux process-event connector ----------------------------------------------

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2
PROC_EVENT_FORK = 0x00000001
PROC_EVENT_EXIT = 0x80000000
NLMSG_HDR = struct.Struct("=IHHII")
CN_MSG = struct.Struct("=IIIIHH")
PROC_EVENT_HDR = struct.Struct("=IIQ")  # what, cpu, timestamp_ns
FORK_BODY = struct.Struct("=IIII")  # parent pid, parent tgid, child pid, child tgid
EXIT_BODY = struct.Struct("=IIII")  # pid, tgid, exit code, exit signal


class NetlinkEvents:
    """Fork and exit notices for every process on the machine, as they happen.

    Needs CAP_NET_ADMIN (root). Inside a container's own PID or network namespace the
    kernel may deliver nothing at all, so `open()` proves it works with a test child.
    """

    def __init__(self):
        self.sock = None

    def open(self, self_test_timeout=0.1):
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
            sock.bind((0, CN_IDX_PROC))
            self.sock = sock
            self._control(PROC_CN_MCAST_LISTEN)
            sock.setblocking(False)
            if not self._self_test(self_test_timeout):
                raise OSError("the process-event connector stayed silent")
        except OSError:
            self.close()
            raise
        return self

    def _control(self, op):
        body = struct.pack("=I", op)
        cn = CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(body), 0) + body
        self.sock.send(NLMSG_HDR.pack(NLMSG_HDR.size + len(cn), 3, 0, 0, 0) + cn)

    def _self_test(self, timeout):
        child = subprocess.Popen(["/bin/true"] if os.path.exists("/bin/true") else ["true"])
        child.wait()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for kind, pid, _ in self.read(max(0.0, deadline - time.monotonic())):
                if kind == "fork" and pid == child.pid:
                    return True
        return False

    def fileno(self):
        return self.sock.fileno()

    def read(self, timeout=0.0):
        """[(kind, pid, parent_pid)] with kind 'fork' or 'exit'; waits up to timeout."""
        if timeout > 0:
            ready, _, _ = select.select([self.sock], [], [], timeout)
            if not ready:
                return []
        return self.drain()

    def drain(self):
        events = []
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return events
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # overrun: the caller rescans
                    events.append(("overrun", 0, 0))
                    continue
                raise
            offset = 0
            while offset + NLMSG_HDR.size <= len(data):
                length = NLMSG_HDR.unpack_from(data, offset)[0]
                if length < NLMSG_HDR.size:
                    break
                event = self._parse(data, offset + NLMSG_HDR.size)
                if event:
                    events.append(event)
                offset += (length + 3) & ~3

    @staticmethod
    def _parse(data, at):
        at += CN_MSG.size
        if at + PROC_EVENT_HDR.size > len(data):
            return None
        what = PROC_EVENT_HDR.unpack_from(data, at)[0]
        at += PROC_EVENT_HDR.size
        if what == PROC_EVENT_FORK:
            _, parent_tgid, child_pid, child_tgid = FORK_BODY.unpack_from(data, at)
            if child_pid == child_tgid:  # a new process, not a new thread
                return ("fork", child_tgid, parent_tgid)
        elif what == PROC_EVENT_EXIT:
            pid, tgid, _, _ = EXIT_BODY.unpack_from(data, at)
            if pid == tgid:
                return ("exit", tgid, 0)
        return None

    def close(self):
        if self.sock is not None:
            try:
                self._control(PROC_CN_MCAST_IGNORE)
            except OSError:
                pass
            self.sock.close()
            self.sock = None


class ExitNotices:
    """pidfds of watched processes in one epoll: an exit is known about 1 ms after it."""

    def __init__(self):
        self._epoll = select.epoll()
        self._fds = {}  # fd -> key
        self._by_key = {}

    def add(self, key):
        pid = key[0]
        if key in self._by_key:
            return True
        try:
            fd = os.pidfd_open(pid)
        except (ProcessLookupError, OSError):
            return False
        self._fds[fd] = key
        self._by_key[key] = fd
        self._epoll.register(fd, select.EPOLLIN)
        return True

    def remove(self, key):
        fd = self._by_key.pop(key, None)
        if fd is not None:
            self._fds.pop(fd, None)
            try:
                self._epoll.unregister(fd)
            except (OSError, ValueError):
                pass
            os.close(fd)

    def fileno(self):
        return self._epoll.fileno()

    def ready(self, timeout=0.0):
        """Keys of processes that exited (each reported until removed)."""
        return [self._fds[fd] for fd, _ in self._epoll.poll(timeout) if fd in self._fds]

    def close(self):
        for key in list(self._by_key):
            self.remove(key)
        self._epoll.close()


class ProcScanner:
    """New PIDs by listing /proc: each PID's stat is read once, when it first appears.

    /proc is listed only when the kernel's last allocated PID (the fifth field of
    /proc/loadavg, one small read) has moved: on a quiet machine a sweep costs a few
    microseconds whatever the number of processes.
    """

    def __init__(self):
        self._seen = set()
        self._last_pid = None

    @staticmethod
    def last_pid():
        try:
            with open(f"{PROC}/loadavg", "rb") as handle:
                return handle.read().rsplit(None, 1)[-1]
        except (OSError, IndexError):
            return None

    def new_pids(self):
        last = self.last_pid()
        if last is not None and last == self._last_pid:
            return set()
        self._last_pid = last
        listing = set(os.listdir(PROC))
        fresh = listing - self._seen
        self._seen = listing
        return {int(name) for name in fresh if name.isdigit()}


_PSUTIL_STATE = {v: k for k, v in STATUS_WORDS.items()}


def psutil_stat(proc):
    """A Stat for a psutil.Process (the portable path), or None when it is gone."""
    try:
        with proc.oneshot():
            times = proc.cpu_times()
            return Stat(
                pid=proc.pid,
                name=proc.name(),
                state=_PSUTIL_STATE.get(proc.status(), "?"),
                ppid=proc.ppid(),
                pgrp=os.getpgid(proc.pid),
                session=os.getsid(proc.pid),
                cpu_ticks=int((times.user + times.system) * CLOCK_TICKS),
                start_ticks=int(round((proc.create_time() - boot_time()) * CLOCK_TICKS)),
                rss_pages=proc.memory_info().rss // PAGE_SIZE,
            )
    except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
        return None


def psutil_children(root_pid, known=None):
    """({pid: Stat} of new descendants, {pid: status word} of the `known` ones still there).

    Known processes cost one status read each; only new ones are read in full.
    """
    try:
        procs = psutil.Process(root_pid).children(recursive=True)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return {}, {}
    known = known or {}
    fresh, statuses = {}, {}
    for proc in procs:
        if proc.pid in known:
            try:
                if same_time(proc.create_time(), known[proc.pid]):
                    statuses[proc.pid] = proc.status()
                    continue
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        stat = psutil_stat(proc)
        if stat is not None:
            fresh[proc.pid] = stat
    return fresh, statuses


# --- the supervisor's own process ---------------------------------------------------

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper():
    """Orphans of our servers get reparented to us (and we reap them), not to PID 1."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def raise_open_files_limit():
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft
        return target
    return soft


def children_of_me(stats=None):
    stats = stats if stats is not None else parent_map()
    me = os.getpid()
    return [s for s in stats.values() if s.ppid == me]


def lan_addresses():
    """This machine's IPv4 addresses other than loopback (for the Join panel)."""
    found = []
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                found.append(address.address)
    return sorted(set(found))
