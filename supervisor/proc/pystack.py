"""The Python stack of another process, read from outside with py-spy.

    StackReader().read(pid)                    # Stack(pid, frames=(Frame(file, line, function, code), ...))
    StackReader().read(pid, with_locals=True)  # and the innermost frame's local variables

py-spy (`py-spy dump --json --pid PID`, `--locals`) attaches with ptrace for a few
milliseconds. At most `max_reads` reads run at a time; one more is refused at once (kind
"busy") instead of queueing. Every failure is a StackError whose `kind` says which:
busy, gone, zombie, denied (no ptrace permission), missing (no py-spy), timeout, failed.

Under Yama's ptrace_scope 1 (Ubuntu's default) a process may be traced only by its
ancestors, and py-spy started by the dashboard is the servers' cousin, not their ancestor.
`tracer_environment()` gives the variable that makes a lecture server, and each child it
forks, name the dashboard as its permitted tracer (servers/common.py reads it).
"""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import threading

from supervisor.proc.stat import read_stat

TRACER_ENV = "FORKWATCH_PTRACER"  # the variable servers/common.py reads
YAMA_SCOPE = "/proc/sys/kernel/yama/ptrace_scope"
MAX_SOURCE_BYTES = 2_000_000
MAX_VALUE = 500

BUSY = "busy"
GONE = "gone"
ZOMBIE = "zombie"
DENIED = "denied"
MISSING = "missing"
TIMEOUT = "timeout"
FAILED = "failed"


class StackError(Exception):
    """A stack that could not be read; `kind` is one of the names above."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclasses.dataclass(frozen=True)
class Frame:
    file: str
    line: int
    function: str
    code: str | None


@dataclasses.dataclass(frozen=True)
class Local:
    name: str
    value: str
    arg: bool


@dataclasses.dataclass(frozen=True)
class Stack:
    """A process's Python stack, innermost frame first."""

    pid: int
    frames: tuple[Frame, ...]
    locals: tuple[Local, ...] | None = None

    def as_dict(self):
        answer = {"pid": self.pid, "frames": [dataclasses.asdict(frame) for frame in self.frames]}
        if self.locals is not None:
            answer["locals"] = [dataclasses.asdict(local) for local in self.locals]
        return answer


def find_py_spy():
    """The py-spy installed beside this Python (the project's venv), else the one on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "py-spy")
    if os.access(beside, os.X_OK):
        return beside
    return shutil.which("py-spy")


def yama_scope(path=YAMA_SCOPE):
    """Yama's ptrace_scope (0-3), or None on a kernel without Yama."""
    try:
        with open(path) as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def tracer_environment(scope=None):
    """Environment to give a server so that this process (and py-spy, its child) may trace
    it under Yama's ptrace_scope 1; empty where it is not needed."""
    scope = yama_scope() if scope is None else scope
    return {TRACER_ENV: str(os.getpid())} if scope == 1 else {}


def source_line(path, number):
    """Line `number` of a Python source file, stripped; None for anything else."""
    if not path.endswith(".py") or number < 1:
        return None
    try:
        if not os.path.isfile(path) or os.path.getsize(path) > MAX_SOURCE_BYTES:
            return None
        with open(path, encoding="utf-8", errors="replace") as handle:
            for index, text in enumerate(handle, 1):
                if index == number:
                    return text.strip()
    except OSError:
        return None
    return None


def _denied_message(pid, scope):
    message = f"no permission to attach to process {pid} (ptrace)"
    if scope == 1:
        return (
            f"{message}: Yama's ptrace_scope is 1, so only a process's ancestors or the tracer it "
            f"names may read it; forkwatch's servers name the dashboard when started with {TRACER_ENV}"
        )
    if scope == 2:
        return f"{message}: Yama's ptrace_scope is 2, so only root (CAP_SYS_PTRACE) may read stacks"
    if scope == 3:
        return f"{message}: Yama's ptrace_scope is 3, so nobody may"
    return message


def _is_denied(stderr):
    return "Permission Denied" in stderr or "os error 13)" in stderr or "os error 1)" in stderr


def _first_error(stderr):
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    chosen = next((line for line in lines if line.startswith("Error:")), lines[0] if lines else "no output")
    return chosen[:300]


class StackReader:
    """Reads Python stacks with py-spy, at most `max_reads` at a time."""

    def __init__(self, py_spy=None, timeout=5.0, max_reads=2, yama_path=YAMA_SCOPE):
        self.py_spy = py_spy
        self.timeout = timeout
        self.max_reads = max_reads
        self.yama_path = yama_path
        self._slots = threading.BoundedSemaphore(max_reads)

    def read(self, pid, with_locals=False):
        """The Stack of pid (its main thread), or StackError."""
        if not self._slots.acquire(blocking=False):
            raise StackError(BUSY, f"{self.max_reads} stack reads are already running; try again in a moment")
        try:
            return self._read(pid, with_locals)
        finally:
            self._slots.release()

    def _check_alive(self, pid):
        stat = read_stat(pid)
        if stat is None:
            raise StackError(GONE, f"process {pid} is gone")
        if stat.state == "Z":
            raise StackError(ZOMBIE, f"process {pid} is a zombie: it has exited and has no stack")

    def _read(self, pid, with_locals):
        self._check_alive(pid)
        py_spy = self.py_spy or find_py_spy()
        if not py_spy:
            raise StackError(MISSING, "py-spy is not installed (pip install py-spy)")
        argv = [py_spy, "dump", "--json", "--pid", str(pid)] + (["--locals"] if with_locals else [])
        try:
            done = subprocess.run(argv, capture_output=True, timeout=self.timeout, stdin=subprocess.DEVNULL)
        except FileNotFoundError as exc:
            raise StackError(MISSING, f"py-spy is not installed (pip install py-spy): {exc}") from None
        except subprocess.TimeoutExpired:
            raise StackError(TIMEOUT, f"py-spy did not answer within {self.timeout:g} s") from None
        stderr = done.stderr.decode("utf-8", "replace")
        if done.returncode != 0:
            self._check_alive(pid)
            if _is_denied(stderr):
                raise StackError(DENIED, _denied_message(pid, yama_scope(self.yama_path)))
            raise StackError(FAILED, f"py-spy could not read process {pid}: {_first_error(stderr)}")
        return self._parse(pid, done.stdout, with_locals)

    @staticmethod
    def _parse(pid, output, with_locals):
        try:
            threads = json.loads(output)
            thread = next((t for t in threads if t.get("os_thread_id") == pid), threads[0])
            raw_frames = thread["frames"]
            frames = tuple(
                Frame(f["filename"], int(f["line"]), f["name"], source_line(f["filename"], int(f["line"])))
                for f in raw_frames
            )
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise StackError(FAILED, f"py-spy's answer for process {pid} was not understood: {exc}") from None
        local_vars = None
        if with_locals:
            top = (raw_frames[0].get("locals") or []) if raw_frames else []
            local_vars = tuple(
                Local(str(v.get("name")), str(v.get("repr"))[:MAX_VALUE], bool(v.get("arg"))) for v in top
            )
        return Stack(pid, frames, local_vars)
