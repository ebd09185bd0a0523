"""What the whole room follows: the stage (one server, a comparison or a recording the
instructor puts in front of everyone) and where the lesson is. Next and Back move through
the lesson's steps; each step starts what it needs, stages it and tells the room what to
watch, published as `stage` and `lesson` events.

A step's servers are started with the step's options (a server already running with them
is left alone); a server the lesson started for an earlier step that this step does not
name is stopped, while servers the instructor started by hand are never touched.
"""

import logging
import threading
import time

from supervisor.core.process import CommandError
from supervisor.core.states import RUNNING_STATES, ServerState

log = logging.getLogger(__name__)

READY_TIMEOUT = 15.0
COMPARISON_WAIT = 120.0
STAGE_KINDS = ("server", "compare", "recording")


class Classroom:
    def __init__(self, manager, clients, comparisons, lesson):
        self.manager = manager
        self.clients = clients  # ForkClients
        self.comparisons = comparisons
        self.lesson = lesson
        # kind -> is_known(name); a kind without one cannot be staged (yet)
        self.stageable = {
            "server": lambda name: name in manager.catalog,
            "compare": lambda name: name in comparisons.known,
        }
        self._stage = {"kind": None, "name": None, "t": None}
        self.position = 0  # 0: the lesson has not begun; else 1 … len(steps)
        self._lesson_started = set()  # servers the lesson started
        self._lock = threading.Lock()
        self._apply_lock = threading.Lock()

    # --- the stage --------------------------------------------------------------------

    def stage_recordings(self, known):
        """Recordings can be staged too, by their id: known(name) says whether it names one."""
        self.stageable["recording"] = known

    @property
    def stage(self):
        with self._lock:
            return dict(self._stage)

    def set_stage(self, kind, name):
        """Put `name` of `kind` on stage (kind None clears it) and tell the room."""
        if kind is None:
            name = None
        elif kind not in STAGE_KINDS:
            raise CommandError(f"kind must be one of {', '.join(STAGE_KINDS)}", 400)
        elif kind not in self.stageable:
            raise CommandError(f"a {kind} cannot be put on stage here", 400)
        elif not isinstance(name, str) or not self.stageable[kind](name):
            raise CommandError(f"there is no {kind} named {str(name)[:60]!r}", 404)
        with self._lock:
            self._stage = {"kind": kind, "name": name, "t": time.time()}
            stage = dict(self._stage)
        self.manager.announce("stage", stage)
        return stage

    def unstage(self, kind, name):
        """Clear the stage if it shows `name` of `kind` (a recording just deleted)."""
        with self._lock:
            showing = self._stage["kind"] == kind and self._stage["name"] == name
        if showing:
            self.set_stage(None, None)

    def snapshot(self):
        """What a page joining now needs to follow the room: stage, lesson, last comparison."""
        return {"stage": self.stage, "lesson": self.lesson_state(), "compare": self.comparisons.last_run()}

    def run_comparison(self, name, clients=None, seconds=None, epoch=None, servers=None):
        """Run a comparison and put it on stage: one click for the instructor."""
        result = self.comparisons.start(name, clients, seconds, epoch, servers)
        self.set_stage("compare", name)
        return result

    # --- the lesson -------------------------------------------------------------------

    def lesson_state(self):
        with self._lock:
            position = self.position
        steps = self.lesson.steps
        step = steps[position - 1] if position else None
        return {
            "step": position,
            "of": len(steps),
            "title": step.title if step else None,
            "watch": list(step.watch) if step else [],
            "lesson": self.lesson.title,
        }

    def describe_lesson(self):
        return {**self.lesson.describe(), **self.lesson_state()}

    def next(self):
        return self.go(self.position + 1)

    def back(self):
        if self.position <= 1:
            raise CommandError("this is the first step", 409)
        return self.go(self.position - 1)

    def go(self, position):
        """Move to step `position` (1 … number of steps; 0: before the lesson, starting
        nothing), tell the room, and start what the step needs in the background
        (progress as events); answers at once."""
        count = len(self.lesson.steps)
        if isinstance(position, bool) or not isinstance(position, int):
            raise CommandError("step must be a whole number", 400)
        if not 0 <= position <= count:
            where = "the last" if position > count else "the first"
            raise CommandError(f"this is {where} step (the lesson has {count})", 409)
        with self._lock:
            self.position = position
        state = self.lesson_state()
        self.manager.announce("lesson", state)
        if position:
            self.manager.timeline(None, "lesson", f"step {position} of {count}: {state['title']}")
            epoch = self.manager.epoch  # a "stop everything" after this Next cancels the step
            self.manager.in_background("lesson", f"step {position}", lambda: self._apply_current(epoch))
        return state

    def _apply_current(self, epoch):
        """Bring the room to the step the lesson is at now (a later Next wins)."""
        with self._apply_lock:
            with self._lock:
                position = self.position
            if position:
                self._apply(self.lesson.steps[position - 1], epoch)

    def _apply(self, step, epoch):
        if self.manager.epoch != epoch:
            raise CommandError("cancelled: everything was stopped meanwhile", 409)
        wanted = dict(step.start)
        for name in sorted(self._lesson_started - set(wanted)):
            self._stop(name)
            self._lesson_started.discard(name)
        restarting = [name for name, options in wanted.items() if not self._runs_with(name, options)]
        if restarting or not step.clients:
            self._stop_clients_unless(dict(step.clients), restarting)
        for name, options in wanted.items():
            if name in restarting:
                self.manager.restart(name, options, epoch=epoch)
                self._lesson_started.add(name)
            self._wait_running(name)
        for name, count in step.clients:
            if not any(group["server"] == name for group in self.clients.describe()):
                self.clients.spawn(name, count)
        if step.run:
            self.comparisons.wait(COMPARISON_WAIT)  # one that a quick Next left running ends first
            if self.manager.epoch != epoch:
                raise CommandError("cancelled: everything was stopped meanwhile", 409)
            self.run_comparison(step.stage[1], *step.load, epoch=epoch)
        elif step.stage:
            self.set_stage(*step.stage)

    def _runs_with(self, name, options):
        server = self.manager.get(name)
        return server.state in RUNNING_STATES and server.options == options

    def _stop(self, name):
        try:
            self.manager.stop(name)
        except CommandError:
            pass  # not running any more

    def _stop_clients_unless(self, wanted, restarting):
        """Looping clients go when the step wants none, or their server restarts."""
        groups = self.clients.describe()
        if any(g["alive"] and (g["server"] not in wanted or g["server"] in restarting) for g in groups):
            self.clients.stop_all()

    def _wait_running(self, name):
        server = self.manager.get(name)
        deadline = time.monotonic() + READY_TIMEOUT
        while server.state != ServerState.RUNNING:
            if server.state not in (ServerState.STARTING, ServerState.RUNNING) or time.monotonic() > deadline:
                raise CommandError(f"{name} did not start ({server.state.name.lower()})", 500)
            time.sleep(0.01)
