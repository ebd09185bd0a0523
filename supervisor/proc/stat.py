"""What a process is: /proc/PID/stat parsed into plain frozen data, identity by
(pid, create_time), the tree of a machine's processes, and the rows the dashboard shows.

Reads /proc where it exists and psutil elsewhere; hands out frozen dataclasses, never
psutil objects.
"""

import dataclasses
import os
import select
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
_PSUTIL_STATE = {v: k for k, v in STATUS_WORDS.items()}


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
    doing: str | None = None  # what it is doing, in words (supervisor/core/doing.py)
    syscall: str | None = None
    fd_target: str | None = None
    activity: str | None = None
    sleep_left_s: float | None = None
    sleep_s: float | None = None

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

    @property
    def cpu_seconds(self):
        """CPU time used so far, user and system, by every thread (a zombie keeps its last)."""
        return self.cpu_ticks / CLOCK_TICKS

    @property
    def started(self):
        """When it was created, in seconds since boot (as since_boot() counts)."""
        return self.start_ticks / CLOCK_TICKS

    @property
    def key(self):
        """(pid, create_time): the identity of this process, never reused."""
        return (self.pid, self.create_time)


_boot_time = None


def boot_time():
    """Seconds since the epoch at boot, as psutil computes it (create_times agree)."""
    global _boot_time
    if _boot_time is None:
        _boot_time = psutil.boot_time()
    return _boot_time


def since_boot():
    """Seconds since boot, on the clock a process's start time is counted in."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def read_stat(pid):
    """pid's Stat, or None when the process is gone."""
    if not HAS_PROCFS:
        return _psutil_stat(pid)
    return read_stat_file(f"{PROC}/{pid}/stat", pid)


def read_stat_file(path, pid):
    """The Stat in a /proc stat file (a process's, or one of its threads' under task/),
    or None when it is gone."""
    try:
        with open(path, "rb") as handle:
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


def _psutil_stat(pid):
    """The portable path: a Stat from psutil, or None when the process is gone."""
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            times = proc.cpu_times()
            return Stat(
                pid=pid,
                name=proc.name(),
                state=_PSUTIL_STATE.get(proc.status(), "?"),
                ppid=proc.ppid(),
                pgrp=os.getpgid(pid),
                session=os.getsid(pid),
                cpu_ticks=int((times.user + times.system) * CLOCK_TICKS),
                start_ticks=int(round((proc.create_time() - boot_time()) * CLOCK_TICKS)),
                rss_pages=proc.memory_info().rss // PAGE_SIZE,
            )
    except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
        return None


def same_time(a, b):
    return abs(a - b) < TICK


def create_time_of(pid):
    stat = read_stat(pid)
    return stat.create_time if stat else None


def is_alive(pid, create_time):
    """True while that exact process exists and is not a zombie."""
    stat = read_stat(pid)
    return stat is not None and stat.state != "Z" and same_time(stat.create_time, create_time)


def exists(pid, create_time):
    """True while that exact process exists, zombie or not."""
    stat = read_stat(pid)
    return stat is not None and same_time(stat.create_time, create_time)


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


def children_of(pid):
    """The PIDs of pid's children, zombies included (from /proc/PID/task/*/children: one
    read per thread, not one per child), or None when pid is gone."""
    if not HAS_PROCFS:
        try:
            return {child.pid for child in psutil.Process(pid).children()}
        except psutil.NoSuchProcess:
            return None
    try:
        tasks = os.listdir(f"{PROC}/{pid}/task")
    except (FileNotFoundError, ProcessLookupError):
        return None
    found = set()
    for task in tasks:
        try:
            with open(f"{PROC}/{pid}/task/{task}/children", "rb") as handle:
                found.update(int(child) for child in handle.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def children_of_me(stats=None):
    stats = stats if stats is not None else parent_map()
    me = os.getpid()
    return [s for s in stats.values() if s.ppid == me]


def exit_status(pid, timeout=0.0):
    """Our child pid's exit status once it has exited (as Popen.returncode: negative for a
    signal), waiting at most `timeout` seconds (None: as long as it takes); None while it
    runs. The child is left unreaped: its zombie keeps holding its PID, and so the id of
    the process group it leads, until reap() or its Popen collects it.
    ChildProcessError when it is not a child of ours (or was collected already)."""
    if timeout is None:
        result = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    else:
        if timeout > 0:
            _wait_readable_pidfd(pid, timeout)
        result = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG)
    if result is None:
        return None
    return result.si_status if result.si_code == os.CLD_EXITED else -result.si_status


def _wait_readable_pidfd(pid, timeout):
    """Wait until pid has exited (its pidfd turns readable) or timeout seconds passed."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)


def reap(pid):
    """Collect an exited child of ours by its PID (never waitpid(-1), which would steal a
    Popen's exit status); True once it is collected or was never ours to collect."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return bool(done)


# --- the rows of a tree -----------------------------------------------------------------


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


def info_from_stat(stat, cpu, now_wall, peer=None, **activity):
    """The row of one process; `activity` is what it is doing (ProcInfo's doing … sleep_s)."""
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
        **activity,
    )
