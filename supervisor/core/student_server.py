"""StudentServer: a student's program supervised like the lecture's servers, under limits.

It differs from a lecture server (process.py) where a program forkwatch did not write must:
a free port picked at each start and given as `{port}` (and FORKWATCH_PORT); a working
folder of its own; limits set just before it runs — its tasks capped by its cgroup's
pids.max where cgroups are in use, else by RLIMIT_NPROC when it does not run as root (the
kernel never applies that to root), its address space and CPU time by rlimits
(proc/limits.py's exec wrapper); and readiness as its listening socket appearing in its
tree, read from /proc (a student's program prints no address line; never a probe).
"""

import dataclasses
import os
import time

from supervisor.core.checks.runner import PORT_ENV, fill, free_port
from supervisor.core.checks.tree import ProgramTree
from supervisor.core.process import ManagedServer, _exit_code
from supervisor.core.students import placeholders
from supervisor.proc import limits as program_limits

READY_POLL = 0.01


class StudentServer(ManagedServer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.port = None  # picked at each start
        cap = self.process_cap()
        if cap is None:
            self._timeline(
                "info",
                f"{self.name} will run with no cap on its processes: forkwatch runs as root without "
                "cgroups, and the kernel never applies RLIMIT_NPROC to root",
            )

    def process_cap(self):
        """How its tasks are capped: "pids.max" (its cgroup), "RLIMIT_NPROC", or None."""
        if self._containment is not None and self._containment.pids_in is not None:
            return "pids.max"
        return "RLIMIT_NPROC" if os.getuid() != 0 else None

    def limits(self):
        """The limits it runs under, for the API and the page."""
        allowed = self.spec.limits
        return {
            "processes": allowed.processes,
            "process_cap": self.process_cap(),
            "memory_mb": allowed.memory_bytes >> 20,
            "cpu_seconds": allowed.cpu_seconds,
            "workdir": self._folder(),
        }

    def describe(self, for_event=False):
        info = super().describe(for_event)
        if not for_event:
            info["limits"] = self.limits()
        return info

    # --- the hooks of ManagedServer.start -----------------------------------------------

    def _port_for_run(self):
        return free_port()

    def _argv(self):
        return fill(
            list(self.spec.command), {**placeholders(self.spec.check_options), "port": str(self.port)}
        )

    def _env(self):
        return {**super()._env(), PORT_ENV: str(self.port)}

    def _command_line(self, argv):
        allowed = self.spec.limits
        if self.process_cap() == "pids.max":
            allowed = dataclasses.replace(allowed, processes=None)  # its cgroup caps them
        return program_limits.wrap(argv, allowed)

    def _folder(self):
        return os.path.join(self.settings["runtime_dir"], "students", self.name)

    def _workdir(self):
        folder = self._folder()
        os.makedirs(folder, mode=0o700, exist_ok=True)
        return folder

    def _wait_ready(self, popen):
        """(True, None) once a process of its tree listens on its port."""
        timeout = self.settings.get("start_timeout", 10.0)
        deadline = time.monotonic() + timeout
        tree = ProgramTree(popen.pid, self.port)
        while tree.listener() is None:
            if _exit_code(popen) is not None:
                return False, self._start_failure(popen)
            if self._stop_requested:
                return False, "stopped before it was ready"
            if time.monotonic() >= deadline:
                return False, (
                    f"not ready after {timeout:g} s: nothing in its tree listens on port {self.port} "
                    "(does it take its port from the command line's {port}?)"
                )
            time.sleep(READY_POLL)
        return True, None
