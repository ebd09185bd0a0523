"""The Python stack of a process in a managed tree, for the screens.

    Stacks(watcher).read(pid)   # {pid, server, frames: [{file, line, function, code, source}]}

Only a PID the tree watcher knows is read. One py-spy reader (supervisor/proc/pystack.py) is
shared, so at most two reads run at a time; and everyone who asks for the same process
within `reuse_s` gets the same read (a class following the instructor's code pane asks
together: one attach, forty answers). Each refusal is a CommandError with the HTTP status
of its kind. A frame in a lecture program names it (`source`, the URL of its text) and
keeps its code line; other frames keep theirs only for the instructor (`every_line`).
"""

import os
import threading
import time

from supervisor.core.catalog import PROJECT_ROOT
from supervisor.core.process import CommandError
from supervisor.proc import pystack
from supervisor.proc.stat import create_time_of

LECTURE_FOLDER = os.path.join(PROJECT_ROOT, "servers")
STATUS = {
    pystack.BUSY: 429,
    pystack.GONE: 404,
    pystack.ZOMBIE: 409,
    pystack.DENIED: 403,
    pystack.MISSING: 503,
    pystack.TIMEOUT: 504,
    pystack.FAILED: 502,
}


def lecture_source(path, folder=LECTURE_FOLDER):
    """'/source/servers/NAME.py' for a file of the lecture programs, else None."""
    if not path.endswith(".py") or os.path.dirname(os.path.realpath(path)) != os.path.realpath(folder):
        return None
    return f"/source/servers/{os.path.basename(path)}"


def check_pid(pid):
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        raise CommandError("pid must be a positive whole number", 400)


class _Read:
    """One py-spy read that several askers wait for."""

    def __init__(self):
        self.done = threading.Event()
        self.stack = None
        self.error = None
        self.at = None


class Stacks:
    def __init__(self, watcher, reader=None, reuse_s=0.5):
        self.watcher = watcher
        self.reader = reader or pystack.StackReader()
        self.reuse_s = reuse_s
        self._lock = threading.Lock()
        self._reads = {}  # (pid, create_time, with_locals) -> _Read

    def owner(self, pid):
        """(server, create_time, is_root) of a watched PID; 404 when there is no such
        process, 403 when it belongs to no managed server."""
        check_pid(pid)
        owner = self.watcher.owner_of(pid)
        if owner is None:
            if create_time_of(pid) is None:
                raise CommandError(f"there is no process {pid} (it has exited)", 404)
            raise CommandError(f"PID {pid} is not a process of any server forkwatch runs", 403)
        return owner

    def read(self, pid, with_locals=False, every_line=False):
        server, created, _ = self.owner(pid)
        stack = self._shared(pid, created, bool(with_locals))
        frames = []
        for frame in stack.frames:
            source = lecture_source(frame.file)
            frames.append(
                {
                    "file": frame.file,
                    "line": frame.line,
                    "function": frame.function,
                    "code": frame.code if source or every_line else None,
                    "source": source,
                }
            )
        answer = {"pid": pid, "server": server, "frames": frames}
        if stack.locals is not None:
            answer["locals"] = [{"name": v.name, "value": v.value, "arg": v.arg} for v in stack.locals]
        return answer

    def _shared(self, pid, created, with_locals):
        key = (pid, created, with_locals)
        now = time.monotonic()
        with self._lock:
            for old in [k for k, r in self._reads.items() if r.at is not None and now - r.at >= self.reuse_s]:
                del self._reads[old]
            read = self._reads.get(key)
            leading = read is None
            if leading:
                read = self._reads[key] = _Read()
        if leading:
            try:
                read.stack = self.reader.read(pid, with_locals)
            except pystack.StackError as exc:
                read.error = exc
            read.at = time.monotonic()
            read.done.set()
            if read.error is not None and read.error.kind == pystack.BUSY:
                with self._lock:  # a refusal for being busy is not kept for later askers
                    self._reads.pop(key, None)
        elif not read.done.wait(self.reader.timeout + 1.0):
            raise CommandError(f"the stack of process {pid} was not read in time", 504)
        if read.error is not None:
            raise CommandError(read.error.message, STATUS.get(read.error.kind, 502))
        return read.stack
