"""Running a comparison: each side in turn gets its server (re)started with the side's
options, then the same load of real clients on loopback, while its processes and their
threads are sampled (CPU time from the kernel, not guessed). Every change is published as
a `compare` event carrying the whole run; the servers it started are stopped at the end.

Sides run one after another, never together: two sides may use the same server with other
options (the clock, with and without threads), and CPU work on one side must not take the
cores from the other.

It is a little longer than the other modules (about 380 lines): a side's measurements, the
run's course and the keeper of the one run at a time share the run's lock and its one
published shape, and read best together.
"""

import logging
import threading
import time

from supervisor.core import load
from supervisor.core.comparisons import MAX_SECONDS, STUDENTS, by_name, students_comparison
from supervisor.core.process import CommandError
from supervisor.core.states import ServerState
from supervisor.proc.host import cores_busy_seconds
from supervisor.proc.stat import read_stat, same_time
from supervisor.proc.threads import threads_of

log = logging.getLogger(__name__)

SAMPLE_INTERVAL = 0.1
READY_TIMEOUT = 15.0
EXIT_TIMEOUT = 3.0
MEASURABLE = 0.2  # seconds: a shorter side gives no meaningful CPU share (10 ms clock ticks)
CHILDREN_END = 1.0  # seconds the children of a side may take to end and be reaped after its last answer
RUNNING, DONE, FAILED = "running", "done", "failed"


class SideRun:
    """One side's measurements: the clients' times, and every process and thread its
    server had while it served them (with the CPU time each used)."""

    def __init__(self, side, options):
        self.side = side
        self.options = options
        self.state = "waiting"
        self.error = None
        self.t0 = None  # wall time the side's clients started
        self.askings = []
        self.procs = {}  # (pid, create_time) -> row
        self.peak_processes = self.peak_threads = 0
        self.zombies = 0  # in the latest look: those it leaves once its clients are done
        self.children = 0  # live children in the latest look
        self.after = None
        self.address = None
        self.cores = None
        self.others_busy = None  # cores the rest of the machine kept busy meanwhile

    def machine(self, began, busy_before, busy_after, cores):
        """How busy the machine was besides this side's processes, from two readings."""
        elapsed = time.monotonic() - began
        ours = sum(row["cpu_seconds"] for row in self.procs.values())
        self.cores = cores
        self.others_busy = (
            round(max(0.0, busy_after - busy_before - ours) / elapsed, 2) if elapsed > 0 else None
        )

    def take_sample(self, rows):
        """Merge one look at the tree: rows of (pid, create_time, is_root, Stat, threads)."""
        live = threads = zombies = children = 0
        first = not self.procs
        for pid, created, is_root, stat, tasks in rows:
            row = self.procs.setdefault(
                (pid, created),
                # CPU is counted from the side's start: what a process or thread had used
                # before (the server's own start) is its baseline; a child starts at 0.
                {
                    "pid": pid,
                    "root": is_root,
                    "ppid": stat.ppid,
                    "threads": {},
                    "base": stat.cpu_seconds if first else 0,
                },
            )
            if stat.state != "Z" or "status" not in row:
                row["status"] = stat.status  # as it was while it served, not the zombie it became
            row["cpu_seconds"] = round(stat.cpu_seconds - row["base"], 2)
            for task in tasks:
                known = row["threads"].setdefault(
                    task.tid, {"tid": task.tid, "main": task.main, "base": task.cpu_seconds if first else 0}
                )
                known["status"] = task.status
                known["cpu_seconds"] = round(task.cpu_seconds - known["base"], 2)
            if stat.state != "Z":
                live += 1
                threads += len(tasks)
                children += not is_root
            else:
                zombies += 1
        self.zombies, self.children = zombies, children
        self.peak_processes = max(self.peak_processes, live)
        self.peak_threads = max(self.peak_threads, threads)

    def total(self):
        """Seconds from the first client's question to the last answer (None before one)."""
        done = [a for a in self.askings if a.answered is not None]
        if not done:
            return None
        return round(
            max(a.answered for a in done) - min(a.asked for a in self.askings if a.asked is not None), 3
        )

    def as_dict(self):
        total = self.total()
        procs = sorted(self.procs.values(), key=lambda r: (not r["root"], r["pid"]))
        return {
            **self.side.describe(),
            "options": self.options,
            "state": self.state,
            "error": self.error,
            "address": self.address,
            "t0": self.t0,
            "clients": [a.as_dict() for a in self.askings],
            "answered": sum(a.outcome == load.ANSWERED for a in self.askings),
            "errors": sum(a.outcome not in (load.ANSWERED, load.WAITING) for a in self.askings),
            "total": total,
            "processes": [
                {
                    **{k: v for k, v in row.items() if k not in ("threads", "base")},
                    "cpu_percent": _percent(row["cpu_seconds"], total),
                    "threads": [
                        {
                            **{k: v for k, v in t.items() if k != "base"},
                            "cpu_percent": _percent(t["cpu_seconds"], total),
                        }
                        for t in sorted(row["threads"].values(), key=lambda t: (not t["main"], t["tid"]))
                    ],
                }
                for row in procs
            ],
            "cores": self.cores,
            "others_busy": self.others_busy,
            "peak_processes": self.peak_processes,
            "peak_threads": self.peak_threads,
            "zombies": self.zombies,
            "transcript": list(self.askings[0].steps) if self.askings else [],
            "after": self.after,
        }


def _percent(cpu_seconds, total):
    """CPU time as a share of the side's time (100 = one core all along); None when the side
    was too short to say."""
    return round(100 * cpu_seconds / total) if total and total >= MEASURABLE else None


class ComparisonRun:
    def __init__(self, comparison, clients, seconds, manager, epoch):
        self.comparison = comparison
        self.clients = clients
        self.seconds = seconds
        self.manager = manager
        self.state = RUNNING
        self.error = None
        self.started = time.time()
        self.sides = [SideRun(side, side.options_for(seconds)) for side in comparison.sides]
        self._lock = threading.Lock()
        self._epoch = epoch  # a "stop everything" after it cancels the run

    def as_dict(self):
        with self._lock:
            return {
                **self.comparison.describe(),
                "clients": self.clients,
                "seconds": self.seconds,
                "state": self.state,
                "error": self.error,
                "started": self.started,
                "sides": [side.as_dict() for side in self.sides],
            }

    def publish(self):
        self.manager.announce("compare", self.as_dict())

    def run(self):
        names = []
        try:
            for side in self.sides:
                if side.side.server not in names:
                    names.append(side.side.server)
                self._run_side(side)
            self.state = DONE
        except CommandError as exc:
            self._failed(exc.message)
        except Exception:
            log.exception("comparison %s failed", self.comparison.name)
            self._failed("it failed (the dashboard's log says why)")
        finally:
            for name in names:
                try:
                    self.manager.stop(name)
                except CommandError:
                    pass  # it had stopped by itself (handle_request), or was stopped meanwhile
            self.publish()
            self.manager.timeline(None, "compare", self._summary())

    def _failed(self, error):
        with self._lock:
            self.state, self.error = FAILED, error
            for side in self.sides:
                if side.state not in (DONE, FAILED):
                    side.state = "skipped"

    def _summary(self):
        title = self.comparison.title
        if self.state != DONE:
            return f"comparison {title}: {self.error}"
        totals = ", ".join(
            f"{side.side.label} {side.total():.2f} s" if side.total() is not None else f"{side.side.label} —"
            for side in self.sides
        )
        return f"comparison {title} ({self.clients} clients): {totals}"

    def _run_side(self, side):
        server = self.manager.get(side.side.server)
        side.state = "starting"
        self.publish()
        self.manager.restart(server.name, side.options, epoch=self._epoch)
        deadline = time.monotonic() + READY_TIMEOUT
        while server.state != ServerState.RUNNING:
            if server.state not in (ServerState.STARTING, ServerState.RUNNING) or time.monotonic() > deadline:
                side.state, side.error = FAILED, f"{server.name} did not start ({server.state.name})"
                raise CommandError(side.error, 500)
            time.sleep(0.01)
        protocol = "tcp" if server.spec.protocol == "http" else server.spec.protocol
        speaks = load.SPOKEN_TO.get(server.spec.exercise, "clock")
        address = load.Address(protocol, port=server.port, path=server.unix_path, speaks=speaks)
        side.address = address.words
        root = (server.pid, server.create_time)
        timeout = self.seconds * self.clients + 10.0
        stop_sampling = threading.Event()

        def sample(_asking=None):
            rows = self._look(server, root)
            with self._lock:
                before = (len(side.procs), side.peak_threads)
                side.take_sample(rows)
                changed = before != (len(side.procs), side.peak_threads)
            if changed and _asking is None:
                self.publish()

        def sampler():
            while not stop_sampling.wait(SAMPLE_INTERVAL):
                sample()

        with self._lock:
            side.state, side.t0 = "asking", time.time()
            side.askings = load.new_askings(self.clients)
        sample()
        self.publish()
        thread = threading.Thread(target=sampler, daemon=True, name=f"compare-{side.side.key}")
        began, (cores, busy_before) = time.monotonic(), cores_busy_seconds()
        thread.start()
        try:
            load.run_clients(
                address,
                side.askings,
                timeout,
                stagger=self.comparison.stagger,
                on_change=lambda asking: self.publish(),
                on_answer=sample,
            )
        finally:
            stop_sampling.set()
            thread.join(2.0)
        sample()
        ending = time.monotonic() + CHILDREN_END  # the children that served end, and are reaped or not
        while (side.children or side.zombies) and time.monotonic() < ending:
            time.sleep(SAMPLE_INTERVAL / 10)
            sample()
        with self._lock:
            side.machine(began, busy_before, cores_busy_seconds()[1], cores)
        self._settle(server, root)
        with self._lock:
            side.after = {"state": server.state.name, "exit_code": server.exit_code}
            side.state = DONE
        self.publish()

    def _look(self, server, root):
        """The side's server and its children, each with its Stat and threads, now."""
        members = [(root[0], root[1], True)] + [
            (pid, created, False) for pid, created, _ in self.manager.watcher.descendants(server.name)
        ]
        rows = []
        for pid, created, is_root in members:
            stat = read_stat(pid) if pid else None
            if stat is None or created is None or not same_time(stat.create_time, created):
                continue
            rows.append((pid, created, is_root, stat, threads_of(pid) if stat.state != "Z" else []))
        return rows

    def _settle(self, server, root):
        """A server that ended by itself (handle_request) is reported once its state says so."""
        stat = read_stat(root[0])
        if stat is None or stat.state == "Z" or not same_time(stat.create_time, root[1]):
            server.wait_stopped(EXIT_TIMEOUT)


class Comparisons:
    """The comparisons the page offers, and the one run at a time (the last one is kept)."""

    def __init__(self, manager):
        self.manager = manager
        self.known = by_name()
        students = students_comparison(manager.catalog)
        if students is not None:  # two students' servers of one exercise: the instructor picks
            self.known[STUDENTS] = students
        self._lock = threading.Lock()
        self._run = None
        self._thread = None

    def describe(self):
        with self._lock:
            run = self._run
        return {
            "comparisons": [c.describe() for c in self.known.values()],
            "run": run.as_dict() if run else None,
        }

    def last_run(self):
        with self._lock:
            run = self._run
        return run.as_dict() if run else None

    def start(self, name, clients=None, seconds=None, epoch=None, servers=None):
        """Run comparison `name` in the background (one at a time); `epoch` is the
        manager's epoch the caller began in (default: now): a "stop everything" since then
        cancels it. `servers`: the two students' servers the students comparison sets
        side by side (default: the first two of one exercise)."""
        comparison = self.known.get(name) if isinstance(name, str) else None
        if comparison is None:
            raise CommandError(f"there is no comparison named {str(name)[:60]!r}", 404)
        if servers is not None:
            if name != STUDENTS:
                raise CommandError(
                    f"{comparison.title} has its own servers; only {STUDENTS} takes servers", 400
                )
            try:
                comparison = students_comparison(self.manager.catalog, servers)
            except LookupError as exc:
                raise CommandError(str(exc.args[0]), 404) from None
            except ValueError as exc:
                raise CommandError(str(exc), 400) from None
        clients = comparison.clients if clients is None else clients
        seconds = comparison.seconds if seconds is None else seconds
        if isinstance(clients, bool) or not isinstance(clients, int) or not 1 <= clients <= load.MAX_CLIENTS:
            raise CommandError(f"clients must be a whole number from 1 to {load.MAX_CLIENTS}", 400)
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not 0 <= seconds <= MAX_SECONDS
        ):
            raise CommandError(f"seconds must be a number from 0 to {MAX_SECONDS:g}", 400)
        if seconds and not comparison.takes_seconds:
            raise CommandError(f"{comparison.title} takes no seconds (its handlers do no work)", 400)
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise CommandError(f"a comparison is running already ({self._run.comparison.title})", 409)
            epoch = self.manager.epoch if epoch is None else epoch
            self._run = ComparisonRun(comparison, clients, float(seconds), self.manager, epoch)
            self._thread = threading.Thread(target=self._run.run, daemon=True, name=f"compare-{name}")
            run = self._run
        run.publish()
        self.manager.timeline(
            None, "compare", f"comparison {comparison.title}: {clients} clients, each side in turn"
        )
        self._thread.start()
        return {"running": name, "clients": clients, "seconds": float(seconds)}

    def wait(self, timeout):
        """Wait for the run under way to end; True when none is running."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()
