"""The threads of a process (what a process tree hides), read from /proc/PID/task.

A threading server is one process with a thread per client: its tree shows one node, its
task list shows every thread, each with its own CPU time.
"""

import dataclasses
import os

import psutil

from supervisor.proc.stat import HAS_PROCFS, PROC, read_stat_file


@dataclasses.dataclass(frozen=True)
class ThreadInfo:
    tid: int
    name: str
    status: str
    cpu_seconds: float
    main: bool  # the process's first thread (its tid is the PID)

    def as_dict(self):
        return dataclasses.asdict(self)


def threads_of(pid):
    """ThreadInfo of each thread of pid, main thread first; [] when the process is gone."""
    if not HAS_PROCFS:
        return _psutil_threads(pid)
    try:
        tids = sorted(int(name) for name in os.listdir(f"{PROC}/{pid}/task") if name.isdigit())
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    found = []
    for tid in tids:
        stat = read_stat_file(f"{PROC}/{pid}/task/{tid}/stat", tid)
        if stat is not None:
            found.append(ThreadInfo(tid, stat.name, stat.status, stat.cpu_seconds, main=tid == pid))
    found.sort(key=lambda t: (not t.main, t.tid))
    return found


def _psutil_threads(pid):
    try:
        rows = psutil.Process(pid).threads()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []
    return [
        ThreadInfo(row.id, "", "unknown", row.user_time + row.system_time, main=row.id == pid)
        for row in sorted(rows, key=lambda r: (r.id != pid, r.id))
    ]
