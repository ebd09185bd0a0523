"""Guard: makes sure nothing forkwatch started survives it.

- Ctrl-C / SIGTERM: the dashboard stops every server itself (see Manager.shutdown).
- SIGKILL of the dashboard: the watchdog process (supervisor/watchdog.py) sees its pipe
  close and kills the recorded groups, and every process of their trees the dashboard has
  seen (even one that left its group by setsid() and lost its parent), within its 2 s sweep,
  and where the servers run in cgroups, everything in them.
- Both killed at once (e.g. `kill -9` of both): groups and processes are also written to a
  state file; the next start kills what is left of them, identified by (pid, create_time).
  With cgroups, the next start ends everything in the cgroups the dead run left (the
  Manager does, supervisor/proc/cgroups.py): even a daemon that left the groups and the tree.
"""

import json
import logging
import os
import subprocess
import sys
import threading

from supervisor.core import watchdog
from supervisor.core.catalog import PROJECT_ROOT
from supervisor.proc.stat import same_time

log = logging.getLogger(__name__)
STATE_FILE = "running-groups.json"
LOCK_FILE = "forkwatch.lock"


class AlreadyRunning(RuntimeError):
    """Another forkwatch uses the same config folder (and so the same servers)."""


class Guard:
    def __init__(self, state_dir, use_watchdog=True):
        self._state_path = os.path.join(state_dir, STATE_FILE) if state_dir else None
        self._lock_file = None
        if state_dir:
            os.makedirs(state_dir, mode=0o700, exist_ok=True)
            self._take_lock(os.path.join(state_dir, LOCK_FILE))
        self._groups = {}  # pgid -> create_time of its leader
        self._processes = {}  # pid -> create_time: every process of their trees seen
        self._unsaved = False  # processes changed since the state file was written
        self._lock = threading.Lock()
        self._watchdog = None
        if use_watchdog:
            self._watchdog = subprocess.Popen(
                [sys.executable, "-m", "supervisor.core.watchdog"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                cwd=PROJECT_ROOT,
                start_new_session=True,  # a Ctrl-C in the terminal must not reach it
                text=True,
            )

    def _take_lock(self, path):
        """One forkwatch per config folder: a second one would clean up (kill) the
        first one's servers as if they were left by a crash."""
        import fcntl

        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise AlreadyRunning(
                f"another forkwatch (PID {holder}) is already running with the config folder "
                f"{os.path.dirname(path)}; stop it first, or give this one another folder"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_file = handle

    @property
    def watchdog_pid(self):
        return self._watchdog.pid if self._watchdog else None

    def clean_previous_run(self):
        """Kill what an earlier run that did not stop cleanly left behind.

        Returns (groups it had recorded, processes killed now); (0, 0) after a clean stop.
        """
        if not self._state_path or not os.path.exists(self._state_path):
            return 0, 0
        groups, processes = _read_state(self._state_path)
        killed = watchdog.kill_leftovers(groups, processes) if groups or processes else 0
        self._write()
        if groups:
            log.warning(
                "the previous run did not stop cleanly: %d groups recorded, %d processes killed now",
                len(groups),
                killed,
            )
        return len(groups), killed

    def add(self, pgid, create_time):
        with self._lock:
            self._groups[pgid] = create_time
            self._tell(f"add {pgid} {create_time!r}")
            self._write()

    def watch_cgroups(self, parents):
        """The directories under which every server's cgroup is made (one per hierarchy)."""
        with self._lock:
            self._tell("cgroups " + " ".join(f"{kind}={path}" for kind, path in parents.items()))

    def remove(self, pgid):
        with self._lock:
            if self._groups.pop(pgid, None) is not None:
                self._tell(f"remove {pgid}")
                self._write()

    def add_process(self, pid, create_time):
        """A process of a guarded tree: killed after a crash even when it is in no recorded
        group and no longer below one. Written to the state file by the next save()."""
        with self._lock:
            known = self._processes.get(pid)
            if known is not None and same_time(known, create_time):
                return
            self._processes[pid] = create_time
            self._tell(f"proc {pid} {create_time!r}")
            self._unsaved = True

    def remove_process(self, pid, create_time=None):
        """That process is gone (or no longer guarded)."""
        with self._lock:
            known = self._processes.get(pid)
            if known is None or (create_time is not None and not same_time(known, create_time)):
                return
            del self._processes[pid]
            self._tell(f"gone {pid}")
            self._unsaved = True

    def save(self):
        """Write the state file if processes came or went since it was last written (the
        groups are written at once); called often, so a fork flood costs one write a call."""
        with self._lock:
            if self._unsaved:
                self._write()

    def close(self):
        """A clean exit: everything was stopped; the watchdog leaves without killing."""
        with self._lock:
            if self._watchdog is not None:
                self._tell("bye" if not self._groups and not self._processes else "")
                try:
                    self._watchdog.stdin.close()
                except OSError:
                    pass
                try:
                    self._watchdog.wait(5)
                except subprocess.TimeoutExpired:
                    self._watchdog.kill()
                    self._watchdog.wait()
                self._watchdog = None
            if not self._groups and not self._processes:
                self._write()
            if self._lock_file is not None:
                self._lock_file.close()
                self._lock_file = None

    def _tell(self, line):
        if self._watchdog is None or not line:
            return
        try:
            self._watchdog.stdin.write(line + "\n")
            self._watchdog.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            log.error("the watchdog is gone; servers may outlive a crash of the dashboard")

    def _write(self):
        self._unsaved = False
        if not self._state_path:
            return
        temp = self._state_path + ".tmp"
        state = {
            "groups": {str(k): v for k, v in self._groups.items()},
            "processes": [[pid, created] for pid, created in self._processes.items()],
        }
        try:
            with open(temp, "w") as handle:
                json.dump(state, handle)
            os.replace(temp, self._state_path)
        except OSError as exc:
            log.warning("cannot write %s: %s", self._state_path, exc)


def _read_state(path):
    """({pgid: create_time}, {(pid, create_time)}) from a state file; empty when it is
    unreadable. A file of an earlier version holds only {pgid: create_time}."""
    try:
        with open(path) as handle:
            state = json.load(handle)
        if "groups" not in state:
            state = {"groups": state, "processes": []}
        groups = {int(k): float(v) for k, v in state["groups"].items()}
        processes = {(int(pid), float(created)) for pid, created in state["processes"]}
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        return {}, set()
    return groups, processes
