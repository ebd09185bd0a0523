"""The timeline's story of every child: forked to serve a client, blocked, serving, closing,
exited, a zombie, reaped or killed and by whom — in words, with bursts folded.

The facts come from three places, each exact:
- the tree watcher's `proc` events: a fork (with the client the child serves), a zombie,
  the end (the process is gone: reaped);
- the servers' console lines, each with the PID that printed it (output.py reads the
  console with the writer's credentials): `client is blocked for 2 seconds ...` from child
  7086 is that child's; `-> killing process 7086` from the server says who killed it;
- forkwatch's own actions: its kills from outside, Stop.

A moment waits HOLD seconds before it is told, so that the words of a death know who
caused it (the server prints `-> killing process N` just before its kill; the console and
the watcher are read by different threads). The moments of one server are told together
once it has been quiet for HOLD (or after MAX_HOLD at most), in the order of a child's
life; FOLD or more alike become one line ("6 children killed by kill_processes() and
reaped: …"), so 50 clients do not flood the timeline. The words are in story_words.py. A child's step and the end of its
wait are also published at once as `story` events, for the drawing's countdown.
"""

import dataclasses
import re
import threading
import time

from supervisor.core.story_words import FORKWATCH, KILL_PROCESSES, pid_list, words
from supervisor.proc.stat import read_stat

HOLD = 0.2
MAX_HOLD = 1.0
FOLD = 4
EARLY_LINES = 500  # lines of children not yet known (the console was read before the fork event)

BLOCKED = re.compile(r"^client is blocked for (ten|\d+(?:\.\d+)?) seconds? \.\.\.$")
KILLING = re.compile(r"^-> killing process (\d+)$")
HELLO = re.compile(r"^hello from child (\d+)$")
CHILD_STEPS = {
    "handling a client ...": "serving",
    "closing client socket, exiting child process": "closing",
}
SHUTDOWN_CAUSES = {
    "ctrl c pressed, closing server": "Ctrl-C",
    "SIGTERM received, closing server": "SIGTERM",
}
# How every line the narrator reads begins (any other line is passed over at once: a server
# printing a flood of lines costs one startswith a line).
TOLD_LINES = (
    "client is blocked for ",
    "handling a client ...",
    "closing client socket",
    "client gone:",
    "hello from child ",
    "ctrl c pressed",
    "SIGTERM received",
    "active processes :",
    "-> killing process ",
)
# The order of a child's life: the moments told together are told in this order.
RANK = {
    "forked": 0,
    "blocked": 1,
    "hello": 2,
    "serving": 2,
    "closing": 3,
    "zombie": 4,
    "shutdown": 5,
    "gone": 6,
}
KIND = {"forked": "fork", "zombie": "zombie", "shutdown": "stop", "gone": "exit"}


@dataclasses.dataclass
class Child:
    pid: int
    ppid: int | None
    peer: str | None = None
    client: int | None = None  # the PID of the fork client at the other end, when forkwatch runs it
    step: str = "forked"
    until: float | None = None  # the end of its blocked wait (wall time)
    killed_by: str | None = None
    zombie_told: bool = False


@dataclasses.dataclass
class Moment:
    t: float
    step: str
    child: Child | None = None
    detail: str | None = None  # blocked: the seconds; closing: "gone"; gone: how it ended; shutdown: the line


@dataclasses.dataclass
class Run:
    """What the narrator knows of one run of a server."""

    children: dict = dataclasses.field(default_factory=dict)
    ended: dict = dataclasses.field(default_factory=dict)  # gone, their end not yet told
    early: list = dataclasses.field(default_factory=list)  # (t, pid, text) of children not yet known
    pending: list = dataclasses.field(default_factory=list)
    stopping: bool = False
    cause: str | None = None  # what the server said it caught: Ctrl-C or SIGTERM

    def known(self, pid):
        return self.children.get(pid) or self.ended.get(pid)


class Narrator:
    def __init__(self, emit, publish, root_of, clock=time.time):
        """emit(server, kind, text): a timeline line; publish(kind, payload): a live event;
        root_of(server): the server process's PID, or None; clock: wall time."""
        self._clock = clock
        self._emit = emit
        self._publish = publish
        self._root_of = root_of
        self._runs = {}
        self._clients = {}  # (server, "host:port") -> PID of the fork client with that address
        self._lock = threading.Lock()
        self._telling = threading.Lock()  # one teller at a time, so batches never interleave

    def _run(self, server):
        return self._runs.setdefault(server, Run())

    # --- facts in ---------------------------------------------------------------------

    def on_server(self, payload):
        """A `server` event: a new run starts afresh, Stop is noted, and at the end every
        moment still held is told before the server's last word."""
        name, state = payload["name"], payload["state"]
        if state == "STARTING":
            with self._lock:
                self._runs[name] = Run()
        elif state == "STOPPING":
            with self._lock:
                self._run(name).stopping = True
        elif state in ("STOPPED", "EXITED", "FATAL"):
            self.flush(name, force=True)

    def on_proc(self, proc):
        server, pid, now = proc["server"], proc["pid"], self._clock()
        with self._lock:
            run = self._run(server)
            if proc["kind"] == "fork":
                child = Child(pid, proc.get("ppid"), proc.get("peer"))
                child.client = self._clients.get((server, child.peer))
                if proc.get("status") == "dead":  # forked and gone before it could be read
                    run.pending.append(Moment(now, "gone", child, "missed"))
                    return
                run.children[pid] = child
                run.pending.append(Moment(now, "forked", child))
                for t, _, text in [e for e in run.early if e[1] == pid]:
                    self._child_line(run, child, text, t)
                run.early = [e for e in run.early if e[1] != pid]
                story = self._story(server, child)
            elif proc["kind"] == "status" and proc.get("status") == "zombie":
                child = run.children.get(pid)
                if child is None:
                    return
                child.step = "zombie"
                run.pending.append(Moment(now, "zombie", child))
                story = self._story(server, child)
            elif proc["kind"] == "exit":
                child = run.children.pop(pid, None)
                if child is None:
                    return
                run.ended[pid] = child  # a kill line read a moment later still names its killer
                run.pending.append(Moment(now, "gone", child, self._how_gone(server, run, child)))
                story = {"server": server, "pid": pid, "step": "gone"}
            else:
                return
        self._publish("story", story)

    def _how_gone(self, server, run, child):
        """How a child's end is told, decided when it is seen gone (a kill attributed
        later, within HOLD, still wins when the moment is told)."""
        if run.stopping:
            return "stop"
        root = self._root_of(server)
        stat = read_stat(root) if root else None
        return "parent" if stat is not None and stat.state != "Z" else "with server"

    def on_line(self, server, pid, stream, text):
        """A console line and the PID that printed it."""
        if stream != "stdout" or pid is None or not text.startswith(TOLD_LINES):
            return
        root = self._root_of(server)
        now = self._clock()
        with self._lock:
            run = self._run(server)
            if pid == root:
                self._root_line(server, run, text, now)
                return
            child = run.children.get(pid)
            if child is None:
                if pid not in run.ended:  # its fork is not known yet: kept for a moment
                    run.early = [*run.early[-(EARLY_LINES - 1) :], (now, pid, text)]
                return
            if not self._child_line(run, child, text, now):
                return
            story = self._story(server, child)
        self._publish("story", story)

    def _child_line(self, run, child, text, t):
        """Take in a line a child printed at time t; True when it is a step of its story."""
        step, detail = self._child_step(text)
        if step is None:
            return False
        child.step = step
        if step == "blocked":
            child.until = t + float(detail)
        run.pending.append(Moment(t, step, child, detail))
        return True

    @staticmethod
    def _child_step(text):
        blocked = BLOCKED.match(text)
        if blocked:
            seconds = blocked.group(1)
            return "blocked", "10" if seconds == "ten" else seconds
        if text in CHILD_STEPS:
            return CHILD_STEPS[text], None
        if text.startswith("client gone:"):
            return "closing", "gone"
        if HELLO.match(text):
            return "hello", None
        return None, None

    def _root_line(self, server, run, text, now):
        if text in SHUTDOWN_CAUSES:
            run.cause = SHUTDOWN_CAUSES[text]
        elif text.startswith("active processes :"):
            run.pending.append(Moment(now, "shutdown", detail=text))
        else:
            killing = KILLING.match(text)
            child = run.known(int(killing.group(1))) if killing else None
            if child is not None:
                child.killed_by = KILL_PROCESSES

    def client_connected(self, server, address, client_pid):
        """A fork client of forkwatch's is connected from `address` ("host:port"): the
        child whose peer that is serves it."""
        with self._lock:
            self._clients[(server, address)] = client_pid
            for child in self._run(server).children.values():
                if child.peer == address:
                    child.client = client_pid

    def client_gone(self, server, address):
        with self._lock:
            self._clients.pop((server, address), None)

    def forkwatch_killed(self, server, pids, signame, skipped=0):
        """forkwatch's "Kill all children": told at once, in the lecture's words."""
        with self._lock:
            run = self._run(server)
            for pid in pids:
                child = run.known(pid)
                if child is not None:
                    child.killed_by = FORKWATCH
        zombies = f" ({skipped} zombies skipped: they have exited already)" if skipped else ""
        listed = f": {pid_list(pids)}" if pids else ""
        self._emit(
            server,
            "info",
            f"forkwatch sent {signame} to {len(pids)} children of {server} from outside{listed}{zombies}; "
            "the server's active_processes still lists them",
        )
        verb = "killing" if signame == "SIGKILL" else f"{signame} to"
        if len(pids) >= FOLD:
            self._emit(server, "kill", f"-> {verb} process {pid_list(pids)} (by forkwatch, from outside)")
        else:
            for pid in pids:
                self._emit(server, "kill", f"-> {verb} process {pid} (by forkwatch, from outside)")

    def forkwatch_signalled(self, server, pid):
        with self._lock:
            child = self._run(server).known(pid)
            if child is not None:
                child.killed_by = FORKWATCH

    # --- what the page draws -------------------------------------------------------------

    @staticmethod
    def _story(server, child):
        return {
            "server": server,
            "pid": child.pid,
            "step": child.step,
            "until": child.until if child.step == "blocked" else None,
            "client": child.client,
        }

    def stories(self, server):
        """The story of each child of the server's current run (for a snapshot)."""
        with self._lock:
            run = self._runs.get(server)
            return [self._story(server, child) for child in run.children.values()] if run else []

    # --- telling --------------------------------------------------------------------------

    def flush(self, only=None, force=False):
        """Tell the moments that are ready: every held one of a server quiet for HOLD (or
        whose oldest waited MAX_HOLD); with `force`, all of them now."""
        with self._telling:
            now = self._clock()
            told = []
            with self._lock:
                for server, run in self._runs.items():
                    if only is not None and server != only or not run.pending:
                        continue
                    times = [m.t for m in run.pending]
                    if force:
                        batch, run.pending = run.pending, []
                    elif now - max(times) >= HOLD or now - min(times) >= MAX_HOLD:
                        batch = [m for m in run.pending if now - m.t >= HOLD]
                        run.pending = [m for m in run.pending if now - m.t < HOLD]
                    else:
                        continue
                    told.extend((server, kind, text) for kind, text in self._tell(server, run, batch))
            for server, kind, text in told:
                self._emit(server, kind, text)

    def _tell(self, server, run, batch):
        """[(kind, text)] for a batch of moments: a zombie reaped within the batch is told
        only as its end; alike moments are folded."""
        ended = {m.child.pid for m in batch if m.step == "gone" and m.child}
        batch = [m for m in batch if not (m.step == "zombie" and m.child.pid in ended)]
        batch.sort(key=lambda m: (RANK[m.step], m.t))
        groups = {}
        for moment in batch:
            key, one, many = words(server, run.cause, moment)
            groups.setdefault(key, (KIND.get(moment.step, "child"), many, []))[2].append((moment, one))
        lines = []
        for kind, many, items in groups.values():
            if len(items) >= FOLD and many:
                lines.append((kind, many(len(items), pid_list([m.child.pid for m, _ in items]))))
            else:
                lines.extend((kind, one) for _, one in items)
        for moment in batch:
            if moment.step == "zombie":
                moment.child.zombie_told = True
            elif moment.step == "gone" and moment.child:
                run.ended.pop(moment.child.pid, None)
        return lines
