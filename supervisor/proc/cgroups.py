"""Each server in a cgroup of its own, where the machine lets forkwatch make one.

A cgroup knows its processes exactly — a child that called setsid(), or a daemon whose
parent is long gone, is still in it — and can end them all in one step, even one being
forked at that instant: `cgroup.kill` on cgroup v2; on v1, the freezer stops them all,
each gets SIGKILL while none can fork or exit, then they are thawed to die. `pids.max`
(the v2 pids controller, or v1's pids hierarchy) caps how many tasks a server may have:
a fork bomb stops at the cap.

    containment, why_not = probe(state_dir)  # a Containment, or None and the reason
    cgroup = containment.create(name, pids_max)
    Popen(cgroup.wrap(argv), ...)            # the program enters its cgroup before it runs
    cgroup.members(); cgroup.kill(); cgroup.wait_empty(timeout); cgroup.remove()
    containment.clean_previous()             # what a run that died left: killed, removed

Where there is no writable hierarchy (not root, no delegated cgroup) find() says why and
the supervisor keeps to process groups.
"""

import hashlib
import os
import signal
import subprocess
import threading
import time

from supervisor.proc.stat import read_stat

MOUNTS = "/proc/self/mountinfo"
OWN = "/proc/self/cgroup"
POLL = 0.002


def _lines(path):
    try:
        with open(path) as handle:
            return handle.read().splitlines()
    except OSError:
        return []


def _mounts():
    """{kind: mount point} of cgroup hierarchies: "v2", and v1's "pids" and "freezer"."""
    found = {}
    for line in _lines(MOUNTS):
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        point, fstype, options = fields[4], tail[0], tail[2].split(",")
        if fstype == "cgroup2":
            found.setdefault("v2", point)
        elif fstype == "cgroup":
            for kind in ("pids", "freezer"):
                if kind in options:
                    found.setdefault(kind, point)
    return found


def _own_paths():
    """{kind: this process's cgroup path} in each hierarchy."""
    paths = {}
    for line in _lines(OWN):
        number, controllers, path = line.split(":", 2)
        if number == "0" and controllers == "":
            paths["v2"] = path
        for kind in ("pids", "freezer"):
            if kind in controllers.split(","):
                paths[kind] = path
    return paths


def _write(path, text):
    with open(path, "w") as handle:
        handle.write(text)


def _read(path):
    with open(path) as handle:
        return handle.read()


class ServerCgroup:
    """One server's cgroup: a directory in each hierarchy used ({kind: path})."""

    def __init__(self, dirs):
        self.dirs = dirs

    @property
    def label(self):
        return os.path.basename(next(iter(self.dirs.values())))

    def wrap(self, argv):
        """argv run by a shell that first writes its own PID into each cgroup.procs, then
        execs the program: it is in its cgroups before its first instruction."""
        procs = [os.path.join(path, "cgroup.procs") for path in self.dirs.values()]
        script = 'echo $$ > "$1" && shift && ' * len(procs) + 'exec "$@"'
        return ["/bin/sh", "-c", script, "forkwatch-cgroup", *procs, *argv]

    def members(self):
        """{(pid, create_time)} of every live process in the cgroup."""
        path = next(iter(self.dirs.values()))
        try:
            pids = [int(p) for p in _read(os.path.join(path, "cgroup.procs")).split()]
        except OSError:  # removed meanwhile (ENOENT, or ENODEV from a file opened before)
            return set()
        found = set()
        for pid in pids:
            stat = read_stat(pid)
            if stat is not None and stat.state != "Z":
                found.add(stat.key)
        return found

    def populated(self):
        if "v2" in self.dirs:
            try:
                events = _read(os.path.join(self.dirs["v2"], "cgroup.events")).split()
            except OSError:
                return False
            return events[events.index("populated") + 1] == "1"
        return bool(self.members())

    def kill(self):
        """SIGKILL every process in the cgroup, at once."""
        if "v2" in self.dirs:
            try:
                _write(os.path.join(self.dirs["v2"], "cgroup.kill"), "1")
            except OSError:
                pass  # removed already: nothing left to kill
            return
        freezer = self.dirs["freezer"]
        try:
            _write(os.path.join(freezer, "freezer.state"), "FROZEN")
            deadline = time.monotonic() + 1.0
            while _read(os.path.join(freezer, "freezer.state")).strip() != "FROZEN":
                if time.monotonic() > deadline:
                    break
                time.sleep(POLL)
            for pid in _read(os.path.join(freezer, "cgroup.procs")).split():
                try:
                    os.kill(int(pid), signal.SIGKILL)  # frozen: it can neither exit nor be replaced
                except ProcessLookupError:
                    pass
        except OSError:
            return  # removed already
        finally:
            try:
                _write(os.path.join(freezer, "freezer.state"), "THAWED")
            except OSError:
                pass

    def wait_empty(self, timeout):
        """True once no live process is left in the cgroup (zombies do not count)."""
        deadline = time.monotonic() + timeout
        while self.populated():
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL)
        return True

    def pids(self):
        """{"current", "max", "refused"} from the pids controller (refused: forks it
        failed at the cap), or None without one."""
        where = self.dirs.get("pids") or self.dirs.get("v2")
        try:
            current = int(_read(os.path.join(where, "pids.current")))
            cap = _read(os.path.join(where, "pids.max")).strip()
            events = _read(os.path.join(where, "pids.events")).split()
        except (OSError, ValueError):  # no pids controller here, or removed meanwhile
            return None
        refused = int(events[events.index("max") + 1]) if "max" in events else 0
        return {"current": current, "max": None if cap == "max" else int(cap), "refused": refused}

    def remove(self):
        """rmdir the cgroup's directories; False while a live process is still in it."""
        removed = True
        for path in self.dirs.values():
            try:
                os.rmdir(path)
            except FileNotFoundError:
                continue
            except OSError:
                removed = False
        return removed


class Containment:
    """The cgroups forkwatch may make: a parent directory per hierarchy, named after the
    config folder, so that the next run with the same folder finds what a crash left."""

    def __init__(self, parents, pids_in):
        self.parents = parents  # {kind: the parent directory}
        self.pids_in = pids_in  # the kind whose pids.max caps a server, or None
        self._lock = threading.Lock()
        self._serial = 0

    @property
    def description(self):
        """For the page and the log: what is in use."""
        kill = "cgroup v2 (cgroup.kill)" if "v2" in self.parents else "cgroup v1 (freezer)"
        cap = {"v2": "pids.max", "pids": "pids.max (v1)"}.get(self.pids_in, "no pids.max")
        return f"{kill}, {cap}"

    def create(self, name, pids_max=None):
        """A new, empty cgroup for one run of a server."""
        with self._lock:
            self._serial += 1
            leaf = f"{name}-{os.getpid()}-{self._serial}"
        dirs = {}
        for kind in ("v2", "freezer", "pids"):
            if kind in self.parents and (kind != "freezer" or "v2" not in self.parents):
                dirs[kind] = os.path.join(self.parents[kind], leaf)
                os.makedirs(dirs[kind], exist_ok=True)
        cgroup = ServerCgroup(dirs)
        if pids_max is not None and self.pids_in is not None:
            where = dirs.get(self.pids_in)
            _write(os.path.join(where, "pids.max"), str(int(pids_max)))
        return cgroup

    def leftovers(self):
        """The cgroups under the parents: those of this run, or of one that died."""
        leaves = {}
        for kind, parent in self.parents.items():
            try:
                names = [n for n in os.listdir(parent) if os.path.isdir(os.path.join(parent, n))]
            except OSError:
                continue
            for leaf in names:
                leaves.setdefault(leaf, {})[kind] = os.path.join(parent, leaf)
        return [ServerCgroup(dirs) for dirs in leaves.values()]

    def clean_previous(self, timeout=5.0):
        """Kill and remove every cgroup a previous run left; how many processes were in them."""
        killed = 0
        for cgroup in self.leftovers():
            killed += len(cgroup.members())
            cgroup.kill()
            cgroup.wait_empty(timeout)
            cgroup.remove()
        return killed

    def close(self):
        """Remove the parents (when empty): nothing of this run is left in them."""
        for cgroup in self.leftovers():
            cgroup.remove()
        for parent in self.parents.values():
            try:
                os.rmdir(parent)
            except OSError:
                pass


def kill_everything_under(parents, timeout=5.0):
    """For the watchdog: end every process in the cgroups under these parent directories,
    and remove them; how many processes there were."""
    containment = Containment(dict(parents), None)
    killed = containment.clean_previous(timeout)
    containment.close()
    return killed


def parent_name(state_dir):
    digest = hashlib.sha1(os.path.abspath(state_dir).encode()).hexdigest()[:12]
    return f"forkwatch-{digest}"


def probe(state_dir):
    """(Containment, None) when cgroups can be made and joined here, else (None, why)."""
    mounts, own = _mounts(), _own_paths()
    usable = [kind for kind in ("v2", "freezer", "pids") if kind in mounts and kind in own]
    if "v2" not in usable and "freezer" not in usable:
        return None, "no cgroup v2 hierarchy and no v1 freezer is mounted"
    name = parent_name(state_dir)
    parents = {}
    for kind in usable:
        parent = os.path.join(mounts[kind] + own[kind].rstrip("/"), name)
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError:
            continue  # not writable here (not root, not delegated): that hierarchy is left out
        parents[kind] = parent
    if "v2" in parents and not os.path.exists(os.path.join(parents["v2"], "cgroup.kill")):
        os.rmdir(parents.pop("v2"))  # before Linux 5.14: no cgroup.kill
    if "v2" not in parents and "freezer" not in parents:
        for parent in parents.values():
            os.rmdir(parent)
        return None, "no cgroup hierarchy here lets this user make cgroups (not root, none delegated)"
    pids_in = "pids" if "pids" in parents else None
    if pids_in is None and "v2" in parents and _enable_pids(parents["v2"]):
        pids_in = "v2"
    containment = Containment(parents, pids_in)
    if not _can_join(containment):
        containment.close()
        return None, "a process cannot be moved into a new cgroup here"
    return containment, None


def _enable_pids(parent):
    """The v2 pids controller for the servers' cgroups, where the parent may hand it down."""
    try:
        if "pids" not in _read(os.path.join(parent, "cgroup.controllers")).split():
            return False
        _write(os.path.join(parent, "cgroup.subtree_control"), "+pids")
        return True
    except OSError:
        return False


def _can_join(containment):
    """A trial: a shell enters a new cgroup the way every server will."""
    cgroup = containment.create("probe")
    try:
        done = subprocess.run(cgroup.wrap(["true"]), capture_output=True, timeout=10)
        return done.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
    finally:
        cgroup.wait_empty(1.0)
        cgroup.remove()
