"""Manager: owns every ManagedServer, the tree watcher loop and the event history.

Routes and socket handlers call its methods; it returns plain data or raises
CommandError (a sentence and an HTTP status). Everything the OS reports flows through
`_publish` to the subscribers (the Socket.IO fan-out) — one way, never back.

It is longer than the other modules (about 560 lines) because it is the one door from the
screens into the supervision: every query and command the API and Socket.IO offer is a
method here, with its input checked at this edge.
"""

import logging
import os
import signal
import threading
import time

from supervisor.core import students
from supervisor.core.catalog import OptionError
from supervisor.core.check_run import CheckRuns
from supervisor.core.events import EventLog
from supervisor.core.guard import Guard
from supervisor.core.narrator import Narrator
from supervisor.core.process import CommandError, ManagedServer
from supervisor.core.stacks import Stacks
from supervisor.core.states import RUNNING_STATES, SIGNALLABLE_STATES, STOPPED_STATES, ServerState
from supervisor.core.student_server import StudentServer
from supervisor.core.watcher import TreeWatcher
from supervisor.proc import cgroups, host, pystack
from supervisor.proc.signals import SignalResult, signal_process
from supervisor.proc.stat import ZOMBIE, create_time_of, read_stat, same_time

log = logging.getLogger(__name__)

SIGNALS = {
    name: getattr(signal, name)
    for name in (
        "SIGTERM",
        "SIGKILL",
        "SIGINT",
        "SIGHUP",
        "SIGUSR1",
        "SIGUSR2",
        "SIGSTOP",
        "SIGCONT",
        "SIGQUIT",
    )
}
ZOMBIES_FOLDED_PAST = 50  # the snapshot and the page show more zombies as one count
STOPPED_NAMES = frozenset(state.name for state in STOPPED_STATES)
OUTPUT_FLUSH_INTERVAL = 0.05
OUTPUT_LINES_PER_FLUSH = 500
SNAPSHOT_OUTPUT_LINES = 200
STDIN_LINE_LIMIT = 200


def signal_number(name):
    """The number of a signal named in ASCII ("sigkill" works; "ſigkill", whose long s
    upper-cases to S, does not)."""
    if not isinstance(name, str) or not name.isascii() or name.upper() not in SIGNALS:
        raise CommandError(f"unknown signal {name!r}; use one of {', '.join(SIGNALS)}", 400)
    return SIGNALS[name.upper()]


class Manager:
    def __init__(self, settings=None, extra_servers=()):
        self.settings = dict(settings or {})
        self.settings.setdefault("runtime_dir", self.settings.get("state_dir") or "/tmp")
        os.makedirs(self.settings["runtime_dir"], exist_ok=True)
        self.catalog = students.catalog(self.settings, extra_servers)  # ValueError before anything starts
        self.history = EventLog(self.settings.get("history", 2000))
        self._subscribers = []
        self._lock = threading.Lock()
        self._output_lock = threading.RLock()
        self.open_files_limit = host.raise_open_files_limit()
        self.subreaper = host.become_subreaper()
        self.guard = Guard(self.settings.get("state_dir"), use_watchdog=self.settings.get("watchdog", True))
        self.containment, why_not = self._find_containment()
        self.containment_text = (
            f"cgroups: {self.containment.description}"
            if self.containment
            else f"process groups (no cgroups: {why_not})"
        )
        left_in_cgroups = self.containment.clean_previous() if self.containment else 0
        self.left_groups, self.cleaned_at_start = self.guard.clean_previous_run()
        self.cleaned_at_start += left_in_cgroups
        if self.containment:
            self.guard.watch_cgroups(self.containment.parents)
        self.watcher = TreeWatcher(
            self._publish,
            mechanism=self.settings.get("watch_mechanism", "auto"),
            fast_interval=self.settings.get("poll_interval", 0.02),
        )
        self.narrator = Narrator(self.timeline, self._publish, self._root_pid)
        self.servers = {
            name: (StudentServer if spec.student else ManagedServer)(
                spec,
                self._publish,
                self.watcher,
                self.guard,
                self.settings,
                on_line=self.narrator.on_line,
                containment=self.containment,
            )
            for name, spec in self.catalog.items()
        }
        reader = pystack.StackReader(
            py_spy=self.settings.get("py_spy"), timeout=self.settings.get("stack_timeout", 5.0)
        )
        self.stacks = Stacks(self.watcher, reader)  # one reader: at most two py-spy reads at a time
        self.checks = CheckRuns(self)  # the exercises' checks against managed servers
        self.focus = None  # the process whose code the instructor shows the class
        self._stop_event = threading.Event()
        self._background = []
        self._epoch = 0
        self._started = False
        self._closed = False
        if self.left_groups or left_in_cgroups:
            text = (
                f"the previous run did not stop cleanly ({self.left_groups} server groups were running); "
                f"cleaned up {self.cleaned_at_start} processes left behind"
            )
            self._publish("event", {"server": None, "kind": "info", "text": text})

    @property
    def mechanism(self):
        return self.watcher.mechanism

    def _find_containment(self):
        """Each server in its own cgroup where the machine allows it (setting `cgroups`:
        auto, or off); else process groups, as everywhere."""
        if self.settings.get("cgroups", "auto") == "off":
            return None, "turned off by the config"
        if not self.settings.get("state_dir"):
            return None, "no config folder to name them after"
        containment, why_not = cgroups.probe(self.settings["state_dir"])
        log.info(
            "servers run in %s", containment.description if containment else f"process groups ({why_not})"
        )
        return containment, why_not

    # --- background work ----------------------------------------------------------------

    def start_background(self, spawn=None):
        """Start the watcher loop and the output flusher, with `spawn(target)` (Flask-
        SocketIO's start_background_task) or plain daemon threads."""
        if self._started:
            return
        self._started = True
        spawn = spawn or _spawn_thread
        spawn(self.watcher.run, self._stop_event)
        spawn(self._flush_output_loop)

    def _flush_output_loop(self):
        while not self._stop_event.wait(OUTPUT_FLUSH_INTERVAL):
            self.flush_output()
            self.guard.save()

    def flush_output(self):
        self.narrator.flush()
        for server in self.servers.values():
            self._flush_output_of(server)

    def _flush_output_of(self, server):
        with self._output_lock:  # one flusher at a time: each server's lines stay in order
            batches, dropped = server.output.take_pending(OUTPUT_LINES_PER_FLUSH)
            if dropped:
                self._publish(
                    "output",
                    {
                        "server": server.name,
                        "stream": "stderr",
                        "lines": [f"… {dropped} lines not shown live"],
                    },
                )
            for batch in batches:
                self._publish("output", {"server": server.name, **batch})

    # --- events -------------------------------------------------------------------------

    def subscribe(self, callback):
        with self._lock:
            self._subscribers.append(callback)

    def unsubscribe(self, callback):
        with self._lock:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

    def _publish(self, kind, payload):
        if kind == "server" and payload["state"] in STOPPED_NAMES and payload["name"] in self.servers:
            self._flush_output_of(self.servers[payload["name"]])  # its last lines come before its end
        if kind == "event":
            details = {k: v for k, v in payload.items() if k not in ("server", "kind", "text")}
            payload = self.history.append(payload["server"], payload["kind"], payload["text"], **details)
        elif kind == "server":
            self.narrator.on_server(payload)  # the children's story is told before the server's end
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(kind, payload)
            except Exception:
                log.exception("an event subscriber failed")
        if kind == "proc":
            if payload["kind"] in ("fork", "exit"):
                self._guard_process(payload)
            self.narrator.on_proc(payload)

    def _guard_process(self, proc):
        """Every process of a tree the watcher reports is known to the guard while it lives."""
        if proc["create_time"] is None:
            return  # gone before it could be read
        if proc["kind"] == "fork":
            self.guard.add_process(proc["pid"], proc["create_time"])
        else:
            self.guard.remove_process(proc["pid"], proc["create_time"])

    def _root_pid(self, name):
        server = self.servers.get(name)
        return server.pid if server is not None else None

    def publish_play(self, payload):
        """A game move, for the room's live history (and the timeline)."""
        self._publish("play", payload)
        self._publish(
            "event",
            {"server": payload["server"], "kind": "play", "text": f"{payload['who']} {payload['summary']}"},
        )

    def publish_clients(self, groups):
        self._publish("clients", {"groups": groups})

    def publish_client_output(self, server, pid, lines):
        """Lines a fork client of `server` printed (its own console, not the server's)."""
        self._publish("client_output", {"server": server, "pid": pid, "lines": lines})

    def announce(self, kind, payload):
        """A room-wide event that belongs to no one server (stage, lesson, compare)."""
        self._publish(kind, payload)

    @property
    def epoch(self):
        """Moves on at every "stop everything": long actions begun before it give up."""
        return self._epoch

    def timeline(self, server, kind, text):
        self._publish("event", {"server": server, "kind": kind, "text": text})

    def events_after(self, after=0):
        return {"events": self.history.after(after), "last": self.history.last_id}

    # --- queries ------------------------------------------------------------------------

    def get(self, name):
        server = self.servers.get(name) if isinstance(name, str) else None
        if server is None:
            raise CommandError(f"there is no server named {str(name)[:60]!r}", 404)
        return server

    def _summary(self, server):
        info = server.describe()
        tree = self.watcher.descendants(server.name) if server.state in SIGNALLABLE_STATES else []
        info["children"] = len(tree)
        info["zombies"] = sum(1 for _, _, status in tree if status == ZOMBIE)
        return info

    def list_servers(self):
        return [self._summary(server) for server in self.servers.values()]

    def server_detail(self, name, fold_zombies=False):
        """The server with its tree: every row (the API), or with `fold_zombies` (the
        snapshot, the page) zombies past ZOMBIES_FOLDED_PAST left out of `tree` and only
        counted in `zombies` (`zombies_folded`: true); `zombies(name)` lists them."""
        server = self.get(name)
        info = self._summary(server)
        rows = (
            [p.as_dict() for p in self.watcher.snapshot(name)] if server.state in SIGNALLABLE_STATES else []
        )
        info["zombies_folded"] = fold_zombies and info["zombies"] > ZOMBIES_FOLDED_PAST
        if info["zombies_folded"]:
            rows = [row for row in rows if row["status"] != ZOMBIE]
        info["tree"] = rows
        info["spec"] = server.spec.describe()
        return info

    def zombies(self, name):
        """The server's zombies, each {pid, ppid, create_time}."""
        self.get(name)
        return {
            "server": name,
            "zombies": [
                {"pid": pid, "ppid": ppid, "create_time": round(created, 2)}
                for pid, ppid, created in self.watcher.zombies(name)
            ],
        }

    def snapshot(self):
        """Everything a page needs when it connects: each server with its tree, the story of
        each child, and its last console lines (`output`) with the number of the line after
        them (`output_seq`; a live batch's `seq` numbers its first line)."""
        servers = []
        for name, server in self.servers.items():
            info = self.server_detail(name, fold_zombies=True)
            info["output"], info["output_seq"] = server.output.tail_numbered(SNAPSHOT_OUTPUT_LINES)
            stories = self.narrator.stories(name) if info["tree"] else []
            if info["zombies_folded"]:  # the folded zombies' stories go with their rows
                shown = {row["pid"] for row in info["tree"]}
                stories = [story for story in stories if story["pid"] in shown]
            info["stories"] = stories
            servers.append(info)
        focus = self.focus
        if focus is not None and self.watcher.owner_of(focus["pid"]) is None:
            focus = None  # that process has exited
        return {
            "servers": servers,
            "events": self.history.after(0)[-200:],
            "mechanism": self.mechanism,
            "containment": self.containment_text,
            "mechanism_switches": self.watcher.deaf_switches,
            "focus": focus,
            "checks": self.checks.summaries(),
            "now": time.time(),
        }

    def output(self, name, tail=200):
        return {"lines": self.get(name).output.tail(tail)}

    def stack(self, pid, with_locals=False, every_line=False):
        """The Python stack of a process in a managed tree (supervisor/core/stacks.py)."""
        return self.stacks.read(pid, with_locals, every_line)

    # --- commands -----------------------------------------------------------------------

    def start(self, name, options=None):
        server = self.get(name)
        if self._closed:  # a late restart, lesson step or comparison starts nothing now
            raise CommandError("forkwatch is shutting down", 409)
        try:
            server.start(options)
        except OptionError as exc:
            raise CommandError(str(exc), 400) from exc
        return server.describe()

    def stop(self, name):
        server = self.get(name)
        server.stop()
        return server.describe()

    def restart(self, name, options=None, timeout=15.0, epoch=None):
        """Stop (if running), wait until it has stopped, start again. Blocks until started.
        With `epoch`, a "stop everything" issued meanwhile cancels the start."""
        server = self.get(name)
        if server.state in RUNNING_STATES:
            try:
                server.stop()
            except CommandError:
                pass  # already stopping
        if not server.wait_stopped(timeout):
            raise CommandError(f"{name} did not stop within {timeout:g} s", 500)
        if epoch is not None and epoch != self._epoch:
            raise CommandError("cancelled: everything was stopped meanwhile", 409)
        return self.start(name, options if options is not None else server.options)

    def in_background(self, name, what, action):
        """Run a long action (restart, new round) on its own thread and return at once;
        a failure becomes a timeline event."""

        def run():
            try:
                action()
            except CommandError as exc:
                self.timeline(name, "error", f"{what} of {name} failed: {exc.message}")

        thread = threading.Thread(target=run, daemon=True, name=f"{what}-{name}")
        with self._lock:
            self._background = [t for t in self._background if t.is_alive()] + [thread]
        thread.start()

    def settle(self, timeout=30.0):
        """Wait for the restarts and new rounds under way to finish."""
        deadline = time.monotonic() + timeout
        with self._lock:
            pending = list(self._background)
        for thread in pending:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in pending)

    def restart_later(self, name, options=None):
        server = self.get(name)
        if options is not None:
            try:
                server.spec.parse_options(options)
            except OptionError as exc:
                raise CommandError(str(exc), 400) from exc
        epoch = self._epoch
        self.in_background(name, "restart", lambda: self.restart(name, options, epoch=epoch))
        return {"restarting": name}

    def new_round_later(self, name):
        if self.get(name).spec.secret is None:
            raise CommandError(f"{name} has no secret", 400)
        epoch = self._epoch
        self.in_background(name, "new round", lambda: self.new_round(name, epoch=epoch))
        return {"new_round": name}

    def stop_all(self):
        with self._lock:
            self._epoch += 1  # restarts under way will not start again
        stopped = []
        for server in self.servers.values():
            try:
                server.stop()
                stopped.append(server.name)
            except CommandError:
                continue
        if stopped:
            self.timeline(None, "stop", f"stop everything: {', '.join(stopped)}")
        return {"stopping": stopped}

    def check(self, name):
        """Run the exercise's checks against server `name` (check_run.py): returns at once;
        each check's result comes as a `check` event."""
        if self._closed:
            raise CommandError("forkwatch is shutting down", 409)
        return self.checks.start(name)

    def check_summary(self, name):
        """The last check run of server `name`: its results so far and its counts."""
        return self.checks.summary(name)

    def kill_children(self, name, signame="SIGKILL"):
        """kill_processes() done from outside: forkwatch signals every live child itself
        (the server's active_processes never learns of it), and the timeline says so."""
        sig = signal_number(signame)
        result = self.get(name).kill_children(sig)
        self.narrator.forkwatch_killed(
            name, result["killed"], signal.Signals(sig).name, len(result["skipped"])
        )
        return result

    def interrupt(self, name):
        """Ctrl-C: SIGINT to the server process alone; it runs its own shutdown."""
        return self.get(name).interrupt()

    def signal_process(self, pid, create_time, signame="SIGTERM"):
        """Signal one process, only if it is a live descendant of a managed server and
        still the very process the user saw (create_time within one clock tick)."""
        sig = signal_number(signame)
        if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
            raise CommandError("pid must be a positive whole number", 400)
        if isinstance(create_time, bool) or not isinstance(create_time, int | float):
            raise CommandError("create_time (as shown in the tree) is required", 400)
        if pid == 1:
            raise CommandError("PID 1 is the system's init process; forkwatch never signals it", 403)
        if pid == os.getpid():
            raise CommandError("that is the dashboard itself; use Ctrl-C where it runs", 403)
        owner = self.watcher.owner_of(pid)
        if owner is None:
            if create_time_of(pid) is None:
                raise CommandError(f"there is no process {pid} (it has exited)", 404)
            raise CommandError(f"PID {pid} is not a process of any server forkwatch runs", 403)
        server_name, known_time, is_root = owner
        if is_root:
            raise CommandError(f"PID {pid} is the {server_name} server itself; use Stop", 403)
        if not same_time(known_time, create_time):
            raise CommandError(f"PID {pid} is no longer the process you saw (its number was reused)", 404)

        def announce():  # before the signal goes: its news comes before the exit it causes
            if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
                self.narrator.forkwatch_signalled(server_name, pid)
            self.timeline(server_name, "kill", f"{signame.upper()} sent to PID {pid} of {server_name}")

        result = signal_process(pid, known_time, sig, announce)
        if result == SignalResult.ZOMBIE:
            parent = read_stat(pid)
            reaper = parent.ppid if parent else "its parent"
            raise CommandError(
                f"PID {pid} has already exited: it is a zombie waiting for PID {reaper} to reap it", 409
            )
        if result != SignalResult.SENT:
            raise CommandError(f"PID {pid} has exited", 404)
        return {"pid": pid, "signal": signame.upper(), "server": server_name}

    def set_focus(self, pid):
        """Show the class one process's code (every page opens its code pane), or, with
        pid None, stop showing it. Publishes `focus {server, pid}`."""
        if pid is None:
            self.focus = None
        else:
            server, _, _ = self.stacks.owner(pid)
            self.focus = {"server": server, "pid": pid}
        self._publish("focus", {**(self.focus or {"server": None, "pid": None}), "t": time.time()})
        return self.focus

    def send_stdin(self, name, line):
        if not isinstance(line, str) or len(line) > STDIN_LINE_LIMIT or any(c in line for c in "\r\n\x00"):
            raise CommandError(
                f"line must be text of at most {STDIN_LINE_LIMIT} characters, without line breaks", 400
            )
        self.get(name).send_stdin(line)
        return {"sent": line}

    def reveal_secret(self, name):
        server = self.get(name)
        if server.spec.secret is None:
            raise CommandError(f"{name} has no secret", 400)
        if server.secret is None:
            raise CommandError(f"{name} has not been started yet, so it has no secret", 409)
        self.timeline(name, "secret", f"the instructor peeked at the secret of {name}")
        # Not for the viewers (live broadcasts no "secret"); the recorder may show it from now on.
        self._publish("secret", {"server": name, "revealed": True, "t": time.time()})
        return {"secret": server.secret}

    def new_round(self, name, epoch=None):
        """A new secret and a fresh state: restart the game's server."""
        server = self.get(name)
        if server.spec.secret is None:
            raise CommandError(f"{name} has no secret", 400)
        server.secret = None
        info = self.restart(name, epoch=epoch)
        self.timeline(name, "secret", f"new round of {name}: a new secret")
        return info

    # --- the end --------------------------------------------------------------------------

    def shutdown(self, timeout=10.0):
        """Stop every server and child, then the background loops and the watchdog."""
        if self._closed:
            return
        self._closed = True
        for server in self.servers.values():
            try:
                server.stop()
            except CommandError:
                pass
        deadline = time.monotonic() + timeout
        for server in self.servers.values():
            server.wait_stopped(max(0.1, deadline - time.monotonic()))
        if not self.checks.wait(max(0.1, deadline - time.monotonic())):
            log.error("a check run did not end at shutdown")
        self._stop_event.set()
        if not self._started:
            self.watcher.close()
        self.guard.close()
        if self.containment:
            self.containment.close()
        leftover = [
            s.name
            for s in self.servers.values()
            if s.state != ServerState.STOPPED and s.state in RUNNING_STATES
        ]
        if leftover:
            log.error("servers still running at shutdown: %s", ", ".join(leftover))


def _spawn_thread(target, *args):
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread
