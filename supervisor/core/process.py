"""ManagedServer: one lecture server as a subprocess — spawn, readiness, output, Ctrl-C, stop, exit.

A ManagedServer owns its state and changes it only through `_change_state`, which checks
the allowed-from table in states.py and publishes one `server` event per change. Its
threads only report (lines of output, "ready", "exited"); the state follows from them.

It is longer than the other modules (about 590 lines) because it is one state machine:
start, readiness, Ctrl-C, exit, backoff and stop share its lock and run ids, and splitting
them would spread the only code that changes a server's state over several files. The
console lives in output.py, the words of an exit in exits.py, the OS work (signals,
sockets, the kill of a tree, cgroups) in proc/.
"""

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time

from supervisor.core.catalog import PROJECT_ROOT
from supervisor.core.exits import classify
from supervisor.core.output import OutputBuffer, console_socket, read_console
from supervisor.core.states import (
    ALLOWED_FROM,
    INTERRUPTIBLE_STATES,
    SIGNALLABLE_STATES,
    STARTABLE_STATES,
    STOPPABLE_STATES,
    ExitClass,
    ServerState,
)
from supervisor.proc import pystack, sockets
from supervisor.proc.signals import SignalResult, kill_tree_and_wait, signal_group, signal_process
from supervisor.proc.stat import create_time_of, exit_status, read_stat

log = logging.getLogger(__name__)

KILL_WAIT = 5.0  # seconds a SIGKILLed tree may take to be gone before its survivors are named
ADDRESS_LINE = re.compile(r"^listening on (?:(tcp|udp)://(\[[^\]]*\]|[^:]+):(\d+)|unix:(.+))$")
SECRET_ENV = "FORKWATCH_SECRET"


class CommandError(Exception):
    """A command that cannot be carried out; `status` is the HTTP status to answer with."""

    def __init__(self, message, status=409):
        super().__init__(message)
        self.message = message
        self.status = status


class ManagedServer:
    def __init__(self, spec, publish, watcher, guard, settings, on_line=None, containment=None):
        self.spec = spec
        self.name = spec.name
        self._publish = publish  # publish(kind, payload)
        self._watcher = watcher
        self._guard = guard
        self.settings = settings
        self.state = ServerState.STOPPED
        self.pid = None
        self.create_time = None
        self.port = spec.port
        self.unix_path = None
        self.started_at = None
        self.exit_code = None
        self.exit_class = None
        self.reason = None
        self.options = spec.parse_options({})
        self.secret = None
        self.output = OutputBuffer(
            settings.get("output_lines", 5000), settings.get("output_line_length", 2000)
        )
        self._on_console = on_line  # on_line(server, pid, stream, text): who printed what
        self._interrupted = False
        self._exited = False  # the process of this run has ended by itself: too late to Stop it
        self._last_input = None
        self._lock = threading.RLock()
        self._popen = None
        self._readers = []
        self._address = None
        self._startup_news = threading.Event()
        self._stop_requested = False
        self._stop_done = threading.Event()
        self._survivors = set()  # (pid, create_time) that outlived the stop's SIGKILL
        self._quick_failures = 0
        self._backoff_timer = None
        self._run_id = 0
        self._containment = containment  # cgroups, where the machine allows them (proc/cgroups.py)
        self._cgroup = None

    # --- state ------------------------------------------------------------------------

    def _change_state(self, target, reason=None):
        with self._lock:
            current = self.state
            if current not in ALLOWED_FROM[target]:
                log.error("%s: refused change %s -> %s", self.name, current.name, target.name)
                return False
            self.state = target
            self.reason = reason
            log.info("%s: %s -> %s%s", self.name, current.name, target.name, f" ({reason})" if reason else "")
            payload = self.describe(for_event=True)
        self._publish("server", payload)
        return True

    def describe(self, for_event=False):
        with self._lock:
            info = {
                "name": self.name,
                "state": self.state.name,
                "pid": self.pid,
                "port": self.port,
                "reason": self.reason,
                "exit_code": self.exit_code,
                "exit_class": self.exit_class.value if self.exit_class else None,
                "options": dict(self.options),
            }
            if for_event:
                info["t"] = time.time()
            else:
                info.update(
                    title=self.spec.title,
                    protocol=self.spec.protocol,
                    client=self.spec.client,
                    started_at=self.started_at,
                    unix_path=self.unix_path,
                    reads_stdin=self.spec.reads_stdin,
                    has_secret=self.spec.secret is not None,
                    student=self.spec.student,
                    exercise=self.spec.exercise,
                )
                if self._cgroup is not None and self.state in SIGNALLABLE_STATES:
                    info["pids"] = self._cgroup.pids()  # {current, max, refused}: the cap at work
            return info

    def _timeline(self, kind, text):
        self._publish("event", {"server": self.name, "kind": kind, "text": text})

    # --- start ------------------------------------------------------------------------

    def start(self, options=None, secret=None, _from_backoff=False):
        with self._lock:
            if not _from_backoff:
                if self.state == ServerState.STARTING:
                    raise CommandError(f"{self.name} is already starting")
                if self.state == ServerState.STOPPING:
                    raise CommandError(f"{self.name} is stopping; start it again when it has stopped")
                if self.state not in STARTABLE_STATES:
                    raise CommandError(f"{self.name} is already {self.state.name.lower()}")
                self.options = self.spec.parse_options(options)
                self._quick_failures = 0
            if self.spec.secret and (secret is not None or self.secret is None or not _from_backoff):
                self.secret = secret if secret is not None else self.spec.secret.pick()
            self._run_id += 1
            self._stop_requested = False
            self._survivors = set()
            self._interrupted = False
            self._exited = False
            self._last_input = None
            self._stop_done.clear()
            self._startup_news.clear()
            self._address = None
            self.exit_code = None
            self.exit_class = None
            self.pid = self.create_time = None
            self.port = self._port_for_run()
            self.unix_path = None
            argv = self._argv()
            env = self._env()
            self._change_state(ServerState.STARTING)
            (out, out_writer), (err, err_writer) = console_socket(), console_socket()
            try:
                self._cgroup = (
                    self._containment.create(self.name, self.spec.pids_max) if self._containment else None
                )
                command = self._command_line(argv)
                self._popen = subprocess.Popen(
                    self._cgroup.wrap(command) if self._cgroup else command,
                    stdin=subprocess.PIPE if self.spec.reads_stdin else subprocess.DEVNULL,
                    stdout=out_writer.fileno(),
                    stderr=err_writer.fileno(),
                    env=env,
                    cwd=self._workdir(),
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                if self._cgroup is not None:
                    self._cgroup.remove()
                for end in (out, err):
                    end.close()
                self._change_state(ServerState.FATAL, f"could not start: {exc}")
                raise CommandError(f"{self.name} could not start: {exc}", 500) from exc
            finally:
                out_writer.close()  # the program holds them now: EOF comes when its tree is done
                err_writer.close()
            self.pid = self._popen.pid
            self.create_time = create_time_of(self.pid)
            self.started_at = time.time()
            if self.create_time is not None:
                self._guard.add(self.pid, self.create_time)
            run_id = self._run_id
            if self.output.tail(1):  # a restart: the console goes on, with a separator
                self.output.add("forkwatch", f"──── {self.name} started again as PID {self.pid} ────")
        self._timeline("start", f"{self.name} started as PID {self.pid}: {' '.join(argv[1:])}")
        self._readers = [
            threading.Thread(target=self._read, args=(out, "stdout"), daemon=True, name=f"{self.name}-out"),
            threading.Thread(target=self._read, args=(err, "stderr"), daemon=True, name=f"{self.name}-err"),
        ]
        for reader in self._readers:
            reader.start()
        self._watcher.watch(
            self.name,
            self.pid,
            self.port if self.spec.protocol in ("tcp", "http") else None,
            child_delay_s=self.options.get("delay"),
        )
        threading.Thread(
            target=self._lifecycle,
            args=(run_id, self._popen, self._cgroup),
            daemon=True,
            name=f"{self.name}-life",
        ).start()

    # Where a student's server (student_server.py) differs: its port, command line and folder.
    def _port_for_run(self):
        return self.spec.port

    def _command_line(self, argv):
        return argv

    def _workdir(self):
        return PROJECT_ROOT

    def _argv(self):
        argv = [sys.executable, "-m", f"{self.spec.package}.{self.spec.module}", *self.spec.args]
        if self.spec.unix_socket:
            self.unix_path = os.path.join(self.settings["runtime_dir"], self.spec.unix_socket)
            argv += ["--unix", self.unix_path]
        elif self.spec.port is not None:
            argv += ["--host", self.settings.get("servers_host", "127.0.0.1"), "--port", str(self.spec.port)]
        for option in self.spec.options:
            argv += option.as_args(self.options[option.name])
        return argv

    def _env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("FORKWATCH_")}
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = PROJECT_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        if self.secret is not None:
            env[SECRET_ENV] = self.secret
        env.update(pystack.tracer_environment())  # under Yama's ptrace_scope 1: py-spy may read it
        return env

    def _read(self, sock, stream):
        read_console(sock, lambda pid, text, cut: self._on_line(stream, pid, text, cut), self.output.max_line)
        if stream == "stdout":
            self._startup_news.set()

    def _on_line(self, stream, pid, text, cut=0):
        self.output.add(stream, text, pid, cut)
        if stream == "stdout" and self._address is None:
            match = ADDRESS_LINE.match(text)
            if match:
                self._address = match
                self._startup_news.set()
        if self._on_console is not None:
            self._on_console(self.name, pid, stream, text)

    # --- the life of one run -----------------------------------------------------------

    def _lifecycle(self, run_id, popen, cgroup):
        ready, why = self._wait_ready(popen)
        if ready:
            with self._lock:
                if self._run_id == run_id and self.state == ServerState.STARTING:
                    self._change_state(ServerState.RUNNING)
                    where = f"port {self.port}" if self.port is not None else (self.unix_path or "stdin")
                    self._timeline("ready", f"{self.name} is ready on {where}")
        elif _exit_code(popen) is None and not self._stop_requested:
            log.warning("%s: %s; killing it", self.name, why)
            signal_group(popen.pid, signal.SIGKILL)
        returncode = _exit_code(popen, timeout=None)  # exited, but not yet reaped
        self._finish(run_id, popen, returncode, None if ready else why, cgroup)

    def _wait_ready(self, popen):
        """(True, None) once the address line was printed and the socket exists."""
        timeout = self.settings.get("start_timeout", 10.0)
        deadline = time.monotonic() + timeout
        if self.spec.protocol == "none":
            return True, None
        while not self._startup_news.wait(0.05):
            if self._stop_requested:
                return False, "stopped before it was ready"
            if _exit_code(popen) is not None:
                break
            if time.monotonic() >= deadline:
                return False, f"not ready after {timeout:g} s (it printed no 'listening on' line)"
        match = self._address
        if match is None:
            _exit_code(popen, max(0.1, deadline - time.monotonic()))
            return False, self._start_failure(popen)
        if match.group(4):
            with self._lock:
                self.unix_path = match.group(4)
        else:
            with self._lock:
                self.port = int(match.group(3))
            self._watcher.set_port(self.name, self.port if match.group(1) == "tcp" else None)
        while not sockets.listens(popen.pid, self.port if not match.group(4) else None, match.group(4)):
            if _exit_code(popen) is not None:
                return False, self._start_failure(popen)
            if self._stop_requested:
                return False, "stopped before it was ready"
            if time.monotonic() >= deadline:
                return False, f"not ready after {timeout:g} s (no listening socket)"
            time.sleep(0.002)
        return True, None

    def _start_failure(self, popen):
        """A sentence for a server that exited before it was ready."""
        for reader in self._readers:
            reader.join(1.0)
        port = self.spec.port
        if port:
            holder = sockets.port_holder(port, udp=self.spec.protocol == "udp")
            if holder is not None and holder[0] != popen.pid:
                command = holder[1] or "unknown command"
                return f"port {port} is in use by PID {holder[0]} ({command})"
        errors = [line for line in self.output.tail(20) if line.strip()]
        last = errors[-1] if errors else "no output"
        code = _exit_code(popen)
        return f"exited with code {code} before it was ready: {last}"

    def _finish(self, run_id, popen, returncode, start_failure, cgroup=None):
        """The process has exited: clean its group and cgroup, drain output, report the final state.

        The server is reaped only once what is left of its group is gone: until then its
        zombie holds the group's number, so no new process can be given it and be hit."""
        with self._lock:
            stopping = self._stop_requested
            self._exited = not stopping  # a Stop from now on would never be reported
        if stopping:
            self._stop_done.wait()
            survivors = self._survivors
        else:
            survivors = self._kill_leftovers(popen.pid)
        popen.wait()
        for reader in self._readers:
            reader.join(2.0)
        if popen.stdin is not None:
            try:
                popen.stdin.close()
            except OSError:
                pass
        self._watcher.unwatch(self.name)
        self._remove_cgroup(cgroup)
        with self._lock:
            if self._run_id != run_id:
                return
            self.exit_code = returncode
            ran_for = time.time() - (self.started_at or time.time())
            if survivors:  # the guard keeps them: the watchdog or the next start kills them
                for pid, created in survivors:
                    self._guard.add_process(pid, created)
                text = survivors_text(survivors)
                self._change_state(ServerState.FATAL, text)
                self._timeline("crash", f"{self.name}: {text}")
                return
            self._guard.remove(popen.pid)
            if stopping:
                self._change_state(ServerState.STOPPED)
                self._timeline("stop", f"{self.name} stopped (exit code {returncode})")
            elif start_failure is not None:
                self._change_state(ServerState.FATAL, start_failure)
                self._timeline("crash", f"{self.name} could not start: {start_failure}")
            else:
                self.exit_class, reason = classify(
                    returncode, self.spec, self.options, self._interrupted, self._last_input
                )
                self._change_state(ServerState.EXITED, reason)
                verb = "finished" if self.exit_class is ExitClass.FINISHED else "crashed"
                self._timeline(self.exit_class.value, f"{self.name} {verb}: {reason}")
                if self.exit_class is ExitClass.CRASH:
                    self._maybe_restart(ran_for)

    def _maybe_restart(self, ran_for):
        if not self.settings.get("autorestart", False):
            return
        if ran_for < self.settings.get("startsecs", 1.0):
            self._quick_failures += 1
        else:
            self._quick_failures = 0
        if self._quick_failures >= self.settings.get("startretries", 3):
            self._change_state(
                ServerState.FATAL, f"exited too quickly {self._quick_failures} times in a row; given up"
            )
            self._timeline("crash", f"{self.name} is flapping; given up")
            return
        delay = self.settings.get("backoff", 0.5) * (2 ** max(0, self._quick_failures - 1))
        self._change_state(ServerState.BACKOFF, f"restarting in {delay:g} s")
        timer = threading.Timer(delay, self._restart_from_backoff, args=(self._run_id,))
        timer.daemon = True
        self._backoff_timer = timer
        timer.start()

    def _restart_from_backoff(self, run_id):
        with self._lock:
            if self._run_id != run_id or self.state != ServerState.BACKOFF:
                return
            try:
                self.start(_from_backoff=True)
            except CommandError as exc:
                self._change_state(ServerState.FATAL, exc.message)

    def _kill_leftovers(self, pgid):
        """After the server itself exited: kill what is left of its group, tree and cgroup;
        the (pid, create_time) of any process that survived."""
        snapshot = self._tree_snapshot()
        if self._cgroup is not None:
            self._cgroup.kill()
        end = kill_tree_and_wait({pgid: self.create_time}, snapshot, signal.SIGKILL, KILL_WAIT)
        if not end.gone:
            log.error("%s: %s", self.name, survivors_text(end.left))
        return end.left

    def _remove_cgroup(self, cgroup):
        """The run is over: its cgroup goes (it should be empty by now; if not, say so)."""
        if cgroup is None:
            return
        if not (cgroup.wait_empty(1.0) and cgroup.remove()):
            log.error("%s: its cgroup %s still holds %s", self.name, cgroup.label, sorted(cgroup.members()))
        with self._lock:
            if self._cgroup is cgroup:
                self._cgroup = None

    # --- stop -------------------------------------------------------------------------

    def stop(self, reason=None):
        with self._lock:
            if self.state == ServerState.STOPPING:
                raise CommandError(f"{self.name} is already stopping")
            if self.state == ServerState.BACKOFF:
                if self._backoff_timer:
                    self._backoff_timer.cancel()
                self._run_id += 1
                self._change_state(ServerState.STOPPED, "stopped while waiting to restart")
                return
            if self.state not in STOPPABLE_STATES:
                raise CommandError(f"{self.name} is not running ({self.state.name.lower()})")
            if self._exited:
                raise CommandError(f"{self.name} has just ended by itself")
            self._stop_requested = True
            self._change_state(ServerState.STOPPING, reason)
            popen = self._popen
        threading.Thread(
            target=self._stop_sequence, args=(popen,), daemon=True, name=f"{self.name}-stop"
        ).start()

    def _tree_snapshot(self):
        """(pid, create_time) of every descendant the watcher knows now, and of everything
        in the server's cgroup; kill_tree_and_wait finds the rest of the tree itself."""
        known = {(pid, created) for pid, created, _ in self._watcher.descendants(self.name)}
        return known | (self._cgroup.members() if self._cgroup is not None else set())

    def _stop_sequence(self, popen):
        """TERM the tree, wait `stop_timeout`, then KILL the tree and the snapshot (even a
        process that left the group by setsid()); done when nothing of it is left."""
        group = {popen.pid: self.create_time}
        try:
            snapshot = self._tree_snapshot()
            timeout = self.settings.get("stop_timeout", 3.0)
            term = kill_tree_and_wait(group, snapshot, signal.SIGTERM, timeout)
            if not term.gone:
                log.info("%s: still running after %g s; SIGKILL", self.name, timeout)
                snapshot |= term.seen | self._tree_snapshot()
                if self._cgroup is not None:
                    self._cgroup.kill()  # everything in it at once, even a child being forked
                end = kill_tree_and_wait(group, snapshot, signal.SIGKILL, KILL_WAIT)
                if not end.gone:
                    log.error("%s: %s", self.name, survivors_text(end.left))
                    self._survivors = end.left
        finally:
            self._stop_done.set()

    # --- signals and stdin ------------------------------------------------------------

    def kill_children(self, sig=signal.SIGKILL):
        """kill_processes(): signal every live child of the server. Zombies are skipped."""
        with self._lock:
            if self.state not in SIGNALLABLE_STATES:
                raise CommandError(f"{self.name} is not running")
            root = self.pid
        killed, skipped = [], []
        for pid, created, _ in sorted(self._watcher.descendants(self.name)):
            stat = read_stat(pid)
            if stat is None or stat.ppid != root:
                continue  # gone, or a grandchild: kill_processes() only knows its children
            result = signal_process(pid, created, sig)
            if result == SignalResult.SENT:
                killed.append(pid)
            elif result == SignalResult.ZOMBIE:
                skipped.append(
                    {"pid": pid, "reason": f"already exited: a zombie waiting for PID {root} to reap it"}
                )
            else:
                skipped.append({"pid": pid, "reason": "already gone"})
        return {"killed": killed, "skipped": skipped}

    def send_stdin(self, line):
        with self._lock:
            if not self.spec.reads_stdin:
                raise CommandError(f"{self.name} does not read its input", 400)
            if self.state not in (ServerState.RUNNING, ServerState.STARTING) or self._popen is None:
                raise CommandError(f"{self.name} is not running")
            try:
                self._popen.stdin.write(line.encode("utf-8") + b"\n")
                self._popen.stdin.flush()
            except (BrokenPipeError, ValueError, OSError) as exc:
                raise CommandError(f"{self.name} no longer reads its input") from exc
            self._last_input = line

    def interrupt(self):
        """Ctrl-C, the lecture's way: SIGINT to the server process alone, as a terminal sends
        it to its foreground program; the server runs its own shutdown (kill_processes()
        for the forking server). If it has not exited `stop_timeout` seconds later,
        forkwatch stops it as Stop does, and says so."""
        with self._lock:
            if self.state not in INTERRUPTIBLE_STATES:
                raise CommandError(f"{self.name} is not running ({self.state.name.lower()})")
            if self._interrupted:
                raise CommandError(f"{self.name} already got Ctrl-C and is shutting down")
            pid, created, popen, run_id = self.pid, self.create_time, self._popen, self._run_id
            if signal_process(pid, created, signal.SIGINT) != SignalResult.SENT:
                raise CommandError(f"{self.name} has already exited")
            self._interrupted = True
        timeout = self.settings.get("stop_timeout", 3.0)
        self._timeline(
            "interrupt", f"Ctrl-C: SIGINT to {self.name} (PID {pid}) alone; it runs its own shutdown"
        )
        threading.Thread(
            target=self._after_interrupt, args=(run_id, popen, timeout), daemon=True, name=f"{self.name}-int"
        ).start()
        return self.describe()

    def _after_interrupt(self, run_id, popen, timeout):
        if _exit_code(popen, timeout) is not None:
            return  # exited (left for the lifecycle to reap once its group is clean)
        with self._lock:
            if self._run_id != run_id or self.state not in STOPPABLE_STATES:
                return
            self._timeline(
                "interrupt",
                f"{self.name} has not exited {timeout:g} s after Ctrl-C; "
                "forkwatch stops it as Stop does (SIGTERM to its group, then SIGKILL)",
            )
            try:
                self.stop(f"still running {timeout:g} s after Ctrl-C; stopped")
            except CommandError:
                pass  # stopped meanwhile

    def wait_stopped(self, timeout):
        deadline = time.monotonic() + timeout
        while self.state in SIGNALLABLE_STATES or self.state == ServerState.BACKOFF:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True


def _exit_code(popen, timeout=0.0):
    """popen's exit code once it has exited (waiting at most `timeout` s, None: for ever),
    else None; its zombie is left for popen.wait() to reap."""
    try:
        return exit_status(popen.pid, timeout)
    except ChildProcessError:  # collected already
        return popen.returncode if popen.returncode is not None else popen.wait()


def survivors_text(survivors):
    pids = ", ".join(str(pid) for pid, _ in sorted(survivors))
    if len(survivors) == 1:
        return f"1 process survived SIGKILL: PID {pids}"
    return f"{len(survivors)} processes survived SIGKILL: PIDs {pids}"
