"""What a process is blocked in, from the kernel: the system call and its arguments in
/proc/PID/syscall, the kernel function in /proc/PID/wchan, and what the descriptor it waits
on is (supervisor/proc/descriptors.py).

A reading costs two small reads and one readlink per process; a process in poll, select or
epoll costs one more small read of its descriptor list (from /proc/PID/mem or
/proc/PID/fdinfo), and a sleep one read of its deadline. Descriptors are described once per
(pid, start, fd, inode) and cached, so nothing scans the kernel's socket tables per process.

Reading /proc/PID/syscall takes the same permission as attaching a debugger (root, or the
same user where Yama allows): without it the answer is UNKNOWN with the reason, never an
exception. A process that is gone reads as GONE.
"""

import dataclasses
import os
import struct
import time

from supervisor.proc import descriptors, syscalls
from supervisor.proc.stat import PROC, read_stat

BLOCKED = "blocked"
RUNNING = "running"
STOPPED = "stopped"
ZOMBIE = "zombie"
UNKNOWN = "unknown"
GONE = "gone"

NEEDS_PERMISSION = "needs permission to read /proc/PID/syscall"
PROCESS_GONE = "the process is gone"

READS = {"accept", "accept4", "recvfrom", "recvmsg", "recvmmsg", "read", "readv", "pread64", "preadv"}
WRITES = {"connect", "sendto", "sendmsg", "sendmmsg", "write", "writev", "pwrite64", "pwritev", "sendfile"}
FD_FIRST = READS | WRITES | {"flock", "fsync", "fdatasync", "ioctl", "splice", "fcntl"}
MAX_WATCHED = 64  # descriptors read from a poll or select set
TIMER_ABSTIME = 1
POLLFD = struct.Struct("=ihh")  # fd, events, revents
POLLIN, POLLPRI, POLLOUT = 0x1, 0x2, 0x4
TIMESPEC = struct.Struct("=qq")  # seconds, nanoseconds (timeval: seconds, microseconds)


@dataclasses.dataclass(frozen=True)
class Blocking:
    """What one process is doing, as the kernel says it.

    `timeout_s` is the timeout the call was given (poll's 0.5 s), `left_s` the time left
    until the deadline a sleep waits for; either is None where there is none or it cannot
    be read. `targets` are the descriptors the call waits on (one for accept or recv, the
    set of a poll).
    """

    pid: int
    state: str
    syscall: str | None = None
    number: int | None = None
    args: tuple[int, ...] = ()
    targets: tuple[descriptors.FdTarget, ...] = ()
    wants: str | None = None  # "read" or "write"
    timeout_s: float | None = None
    left_s: float | None = None
    wchan: str | None = None
    reason: str | None = None

    @property
    def fd(self):
        return self.targets[0].fd if self.targets else None

    @property
    def target(self):
        return self.targets[0] if self.targets else None

    @property
    def fd_target(self):
        """What the descriptors are, in words ("listening socket :12092"), or None."""
        return ", ".join(target.text for target in self.targets) or None

    def as_dict(self):
        return {**dataclasses.asdict(self), "fd": self.fd, "fd_target": self.fd_target}


class _Memory:
    """Small reads of another process's memory (/proc/PID/mem), opened on first use."""

    def __init__(self, pid):
        self.pid = pid
        self._fd = None

    def read(self, address, size):
        if not address:
            return None
        try:
            if self._fd is None:
                self._fd = os.open(f"{PROC}/{self.pid}/mem", os.O_RDONLY)
            data = os.pread(self._fd, size, address)
        except (OSError, OverflowError):
            return None
        return data if len(data) == size else None

    def seconds(self, address, fraction=1e-9):
        """A timespec (or, with fraction=1e-6, a timeval) at address, in seconds."""
        data = self.read(address, TIMESPEC.size)
        if data is None:
            return None
        whole, part = TIMESPEC.unpack(data)
        return whole + part * fraction

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _signed32(value):
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _milliseconds(value):
    ms = _signed32(value)
    return ms / 1000 if ms >= 0 else None


def _poll_set(memory, address, count):
    """[(fd, wants)] of a pollfd array."""
    data = memory.read(address, POLLFD.size * min(count, MAX_WATCHED))
    if data is None:
        return []
    found = []
    for fd, events, _ in POLLFD.iter_unpack(data):
        if fd >= 0:
            found.append((fd, "write" if events & POLLOUT and not events & (POLLIN | POLLPRI) else "read"))
    return found


def _select_set(memory, count, read_address, write_address):
    count = max(0, min(count, 1024))
    found = []
    for address, wants in ((read_address, "read"), (write_address, "write")):
        bits = memory.read(address, (count + 7) // 8) if count else None
        if bits:
            found += [(fd, wants) for fd in range(count) if bits[fd // 8] >> (fd % 8) & 1]
    return found[:MAX_WATCHED]


def _epoll_set(pid, epfd):
    """The descriptors an epoll instance watches, from /proc/PID/fdinfo/EPFD."""
    found = []
    try:
        with open(f"{PROC}/{pid}/fdinfo/{epfd}") as handle:
            for line in handle:
                if line.startswith("tfd:"):
                    parts = line.split()
                    events = int(parts[3], 16) if len(parts) > 3 else POLLIN
                    found.append((int(parts[1]), "write" if events == POLLOUT else "read"))
    except (OSError, ValueError, IndexError):
        return []
    return found[:MAX_WATCHED]


def decode(pid, name, args, memory):
    """(watched [(fd, wants)], timeout_s, left_s) for the call `name` with its arguments."""
    if name in FD_FIRST:
        return [(_signed32(args[0]), "write" if name in WRITES else "read")], None, None
    if name == "poll":
        return _poll_set(memory, args[0], args[1]), _milliseconds(args[2]), None
    if name == "ppoll":
        return _poll_set(memory, args[0], args[1]), memory.seconds(args[2]), None
    if name in ("select", "pselect6"):
        timeout = memory.seconds(args[4], 1e-6 if name == "select" else 1e-9)
        return _select_set(memory, args[0], args[1], args[2]), timeout, None
    if name in ("epoll_wait", "epoll_pwait"):
        return _epoll_set(pid, _signed32(args[0])), _milliseconds(args[3]), None
    if name == "epoll_pwait2":
        return _epoll_set(pid, _signed32(args[0])), memory.seconds(args[3]), None
    if name == "nanosleep":
        return [], memory.seconds(args[0]), None
    if name == "clock_nanosleep":
        wanted = memory.seconds(args[2])
        if wanted is None:
            return [], None, None
        if args[1] & TIMER_ABSTIME:
            try:
                return [], None, max(0.0, wanted - time.clock_gettime(args[0]))
            except (OSError, OverflowError):  # a clock we cannot read (another process's CPU clock)
                return [], None, None
        return [], wanted, None
    return [], None, None


def _read_small(path):
    fd = os.open(path, os.O_RDONLY)  # not open(): this runs for every process every second
    try:
        return os.read(fd, 512).decode("ascii", "replace").strip()
    finally:
        os.close(fd)


def _wchan(pid):
    try:
        text = _read_small(f"{PROC}/{pid}/wchan")
    except OSError:
        return None
    return None if text in ("", "0") else text


class BlockingReader:
    """Reads what processes are blocked in; keeps what their descriptors are, by identity.

    One reader serves one watcher: call `read` for each process at each tick and `prune`
    with the identities still watched after a sweep. With `every_wchan=False` the kernel
    function (/proc/PID/wchan, about a quarter of a reading's cost) is read only for a
    process outside a system call, the one case a sentence needs it.
    """

    def __init__(self, names=None, every_wchan=True):
        self.names = syscalls.NAMES if names is None else names
        self.every_wchan = every_wchan
        self.descriptors = descriptors.Descriptors()

    def read(self, pid, stat=None):
        """A Blocking for pid. `stat` (a fresh Stat of pid) saves one read."""
        stat = stat if stat is not None else read_stat(pid)
        if stat is None:
            return Blocking(pid, GONE, reason=PROCESS_GONE)
        if stat.state == "Z":
            return Blocking(pid, ZOMBIE)
        try:
            line = _read_small(f"{PROC}/{pid}/syscall")
        except PermissionError:
            return Blocking(pid, UNKNOWN, reason=NEEDS_PERMISSION)
        except (FileNotFoundError, ProcessLookupError):
            if read_stat(pid) is None:
                return Blocking(pid, GONE, reason=PROCESS_GONE)
            return Blocking(pid, UNKNOWN, reason="this kernel has no /proc/PID/syscall")
        except OSError as exc:
            return Blocking(pid, UNKNOWN, reason=f"cannot read /proc/PID/syscall: {exc.strerror}")
        if line == "running":
            return Blocking(pid, RUNNING)
        # "T" is a stop by a signal; "t", a debugger's (py-spy's) few milliseconds, is not news
        state = STOPPED if stat.state == "T" else BLOCKED
        parts = line.split()
        try:
            number = int(parts[0])
            args = tuple(int(part, 16) for part in parts[1:7])
        except (IndexError, ValueError):
            return Blocking(pid, UNKNOWN, reason=f"unexpected /proc/PID/syscall: {line[:60]!r}")
        if number < 0 or len(args) < 6:  # in the kernel, but not in a system call
            return Blocking(pid, state, wchan=_wchan(pid))
        name = syscalls.name_of(number, self.names)
        memory = _Memory(pid)
        try:
            watched, timeout_s, left_s = decode(pid, name, args, memory)
        finally:
            memory.close()
        targets = []
        for fd, _ in watched:
            target = self.descriptors.target(pid, stat.start_ticks, fd)
            if target is not None:
                targets.append(target)
        return Blocking(
            pid,
            state,
            syscall=name,
            number=number,
            args=args,
            targets=tuple(targets),
            wants=watched[0][1] if watched else None,
            timeout_s=timeout_s,
            left_s=left_s,
            wchan=_wchan(pid) if self.every_wchan else None,
        )

    def prune(self, keep):
        """Forget every process whose (pid, start_ticks) is not in keep."""
        self.descriptors.prune(set(keep))


def read_blocking(pid):
    """One reading of one process, with nothing cached (for one-off looks)."""
    return BlockingReader().read(pid)
