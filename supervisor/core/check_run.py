"""Checks from the dashboard: an exercise's checks run against a server the dashboard
manages, one run per server at a time, each check's pass or fail with its transcript
published as it ends (`check` events), and the last run's summary kept for pages that
open later.

    runs = CheckRuns(manager)
    runs.start("team3")      # {run, server, exercise, checks}; the run goes on in a thread
    runs.summary("team3")    # the last run: each result so far, the counts, its state

A run starts the server afresh — a check needs a server nobody has talked to, as
`forkwatch check` gives it — and again where a check needs a fresh one or after a failed
one (checks/base.py's run_exercise), through the manager's restart, so the page draws
its tree all along. The checks' options (swap's timeout, the forking clock's delay) are
the server's: a student's from its config table, a lecture server's from its start
options. A game's secret is hidden in what is published (the instructor may reveal it).
"Stop everything" or the dashboard's shutdown ends a run at its next start.
"""

import dataclasses
import logging
import threading
import time

from supervisor.core.checks import base, exercise
from supervisor.core.checks.runner import HOST, CannotRun, PeakSampler
from supervisor.core.checks.tree import ProgramTree
from supervisor.core.process import CommandError
from supervisor.core.redaction import Secret, scrub
from supervisor.core.states import ServerState

log = logging.getLogger(__name__)

TRANSCRIPT_STEPS = 120  # of a check's transcript, published; the rest is counted
STEP_TEXT = 300  # characters of a step's text
START_WAIT = 30.0  # seconds a fresh start may take to be RUNNING
POLL = 0.01


@dataclasses.dataclass
class CheckRun:
    """One run of an exercise's checks against one server, as the pages show it."""

    number: int
    server: str
    chosen: base.Exercise
    results: list = dataclasses.field(default_factory=list)
    error: str | None = None
    started: float = dataclasses.field(default_factory=time.time)
    ended: float | None = None
    peak_processes: int = 0

    def state(self):
        if self.ended is None:
            return "running"
        if self.error is not None:
            return "error"
        return "passed" if all(result["passed"] for result in self.results) else "failed"

    def counts(self):
        passed = sum(1 for result in self.results if result["passed"] is True)
        failed = sum(1 for result in self.results if result["passed"] is False)
        return {
            "server": self.server,
            "run": self.number,
            "exercise": self.chosen.name,
            "title": self.chosen.title,
            "state": self.state(),
            "passed": passed,
            "failed": failed,
            "not_run": len(self.results) - passed - failed,
            "total": len(self.chosen.checks),
            "error": self.error,
            "started": self.started,
            "ended": self.ended,
            "peak_processes": self.peak_processes,
        }

    def summary(self):
        return {
            **self.counts(),
            "checks": [{"name": check.name, "rule": check.rule} for check in self.chosen.checks],
            "results": list(self.results),
        }


class ManagedTargets:
    """A managed server as the checks' target: each `fresh()` restarts it and waits until
    it is RUNNING. `current` is what PeakSampler counts."""

    def __init__(self, manager, name, chosen):
        self.manager = manager
        self.name = name
        self.epoch = manager.epoch
        server = manager.get(name)
        given = dict(server.spec.check_options) if server.spec.student else server.options
        self.options = chosen.option_values(
            {o.name: given[o.name] for o in chosen.options if o.name in given}
        )
        self.current = None
        self.secret = None

    def fresh(self):
        if self.manager.epoch != self.epoch:
            raise CannotRun("cancelled: everything was stopped meanwhile")
        try:
            self.manager.restart(self.name, epoch=self.epoch)
        except CommandError as exc:
            raise CannotRun(f"it could not be started: {exc.message}") from None
        server = self.manager.get(self.name)
        deadline = time.monotonic() + START_WAIT
        while server.state == ServerState.STARTING and time.monotonic() < deadline:
            time.sleep(POLL)
        if server.state != ServerState.RUNNING:
            raise CannotRun(f"it did not start: {server.reason or server.state.name.lower()}")
        pid, self.secret = server.pid, server.secret
        tree = ProgramTree(pid, server.port)
        self.current = Started(tree)

        def exited():
            if server.pid == pid and tree.alive():
                return None
            end = time.monotonic() + 1.0  # its state follows once its tree is cleaned
            while server.state == ServerState.RUNNING and server.pid == pid and time.monotonic() < end:
                time.sleep(POLL)
            if server.state == ServerState.EXITED and server.reason:
                return server.reason
            return (
                "was stopped" if server.state in (ServerState.STOPPING, ServerState.STOPPED) else "has exited"
            )

        return base.Target(HOST, server.port, self.options, self.secret, tree, exited)


@dataclasses.dataclass
class Started:
    """One start of the server, for PeakSampler."""

    tree: ProgramTree
    stopped: bool = False


class CheckRuns:
    def __init__(self, manager):
        self._manager = manager
        self._lock = threading.Lock()
        self._runs = {}  # server name -> its last CheckRun
        self._threads = {}
        self._count = 0

    def start(self, name):
        """Begin a run against server `name`; CommandError when it has no exercise (400)
        or a run of it is under way (409)."""
        server = self._manager.get(name)
        if server.spec.exercise is None:
            raise CommandError(
                f"{name} solves no exercise forkwatch can check (give it one: --as EXERCISE, "
                'or exercise = "…" in its config table)',
                400,
            )
        chosen = exercise(server.spec.exercise)
        with self._lock:
            thread = self._threads.get(name)
            if thread is not None and thread.is_alive():
                began = time.time() - self._runs[name].started
                raise CommandError(
                    f"a check of {name} is already running (begun {began:.0f} s ago); "
                    "its results come as each check ends",
                    409,
                )
            self._count += 1
            run = CheckRun(self._count, name, chosen)
            targets = ManagedTargets(self._manager, name, chosen)
            thread = threading.Thread(
                target=self._run, args=(run, targets), daemon=True, name=f"check-{name}"
            )
            self._runs[name] = run
            self._threads[name] = thread
        self._publish(run, "begin", checks=run.summary()["checks"], title=chosen.title, exercise=chosen.name)
        self._manager.timeline(
            name, "check", f"checking {name} as {chosen.name} ({len(chosen.checks)} checks); it starts afresh"
        )
        thread.start()
        return {"run": run.number, "server": name, "exercise": chosen.name, "checks": run.summary()["checks"]}

    def summary(self, name):
        self._manager.get(name)
        with self._lock:
            run = self._runs.get(name)
            if run is None:
                raise CommandError(f"{name} has not been checked yet", 404)
            return run.summary()

    def summaries(self):
        """{server: its last run's summary}, for the snapshot."""
        with self._lock:
            return {name: run.summary() for name, run in self._runs.items()}

    def wait(self, timeout):
        """Wait for the runs under way to end (a stop everything ends them); True when done."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in threads)

    # --- one run ---------------------------------------------------------------------------

    def _run(self, run, targets):
        sampler = PeakSampler(targets)

        def record(result):
            sampler.sample()
            shown = self._shown(run.server, result, targets.secret)
            with self._lock:
                run.results.append(shown)
            self._publish(run, "result", index=len(run.results) - 1, result=shown)

        try:
            with sampler:
                base.run_exercise(run.chosen, targets.fresh, record)
        except CannotRun as exc:
            run.error = str(exc)
        except Exception:
            log.exception("the check of %s failed", run.server)
            run.error = "the check failed inside the dashboard; its log says why"
        with self._lock:
            run.peak_processes = sampler.peak
            run.ended = time.time()
        counts = run.counts()
        self._publish(run, "end", summary=counts)
        self._manager.timeline(run.server, "check", self._words(counts, run.results))

    def _shown(self, name, result, secret):
        """A result as published: its transcript cut to TRANSCRIPT_STEPS steps of at most
        STEP_TEXT characters, a game's secret hidden."""
        shown = result.as_dict()
        steps = shown["transcript"]
        shown["transcript"] = [
            {**step, "text": step["text"][:STEP_TEXT]} for step in steps[:TRANSCRIPT_STEPS]
        ]
        shown["steps_not_shown"] = max(0, len(steps) - TRANSCRIPT_STEPS)
        spec = self._manager.get(name).spec
        if spec.secret is not None and secret:
            hidden = {Secret(name, spec.secret.kind, secret)}
            shown["transcript"] = scrub(shown["transcript"], hidden, owner=name)
            shown["fault"] = scrub(shown["fault"], hidden, owner=name)
        return shown

    def _publish(self, run, kind, **fields):
        self._manager.announce(
            "check", {"server": run.server, "run": run.number, "kind": kind, "t": time.time(), **fields}
        )

    @staticmethod
    def _words(counts, results):
        name = counts["server"]
        if counts["error"] is not None:
            return f"{name} could not be checked: {counts['error']}"
        failed = [result["name"] for result in results if result["passed"] is False]
        text = f"{name}: {counts['passed']} of {counts['total']} checks passed"
        return text + (f"; failed: {', '.join(failed)}" if failed else "")
