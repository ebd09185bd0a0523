"""Limits for a program forkwatch did not write: resource limits set in its own process
just before it runs, so a fork bomb, a memory hog or a busy loop stops at a bound.

OS floor (it belongs with the process-reading modules). The limits are set by a small exec
wrapper, not by Popen's preexec_fn, which is unsafe in a process with threads:

    python -I -S supervisor/proc/limits.py [--user NAME] AS=2147483648 CPU=30 ... -- COMMAND ARGS...

sets each limit (soft = hard, so the program cannot raise it), when started by root and
told a user becomes that user (groups, gid, uid), and execs COMMAND, which keeps it all.
The kernel never applies RLIMIT_NPROC to root, so a process cap needs a user other than
root; where a cgroup's pids.max caps the program instead, `processes` is None and no
RLIMIT_NPROC is set.
"""

import dataclasses
import os
import pwd
import resource
import sys

PROC = "/proc"


@dataclasses.dataclass(frozen=True)
class Limits:
    """What a program under check may use. Each limit holds for each of its processes,
    except `processes`, which bounds them all together."""

    processes: int | None = 64  # tasks beyond what its user runs already; None: capped elsewhere
    memory_bytes: int = 2 << 30  # address space of a process
    cpu_seconds: int = 30  # CPU time of a process
    file_bytes: int = 64 << 20  # the largest file it may write, its console log included
    user: str | None = None  # run it as this user (root only); None: as ourselves

    def as_dict(self):
        return dataclasses.asdict(self)

    def account(self):
        """(uid, gid) the program will run as; ValueError for an unknown user, or a user
        other than ourselves when we are not root."""
        if self.user is None:
            return os.getuid(), os.getgid()
        try:
            entry = pwd.getpwnam(self.user)
        except KeyError:
            raise ValueError(f"no such user: {self.user}") from None
        if os.getuid() != 0 and entry.pw_uid != os.getuid():
            raise ValueError(f"only root can run a program as {self.user}")
        return entry.pw_uid, entry.pw_gid


def user_tasks(uid):
    """How many tasks (processes and threads) the user runs now: RLIMIT_NPROC counts all
    of a user's tasks, so a cap of N more must start from this count."""
    count = 0
    for name in os.listdir(PROC):
        if not name.isdigit():
            continue
        real_uid = threads = None
        try:
            with open(f"{PROC}/{name}/status", "rb") as handle:
                for line in handle:
                    if line.startswith(b"Uid:"):
                        real_uid = int(line.split()[1])
                    elif line.startswith(b"Threads:"):
                        threads = int(line.split()[1])
                        break
        except (OSError, ValueError, IndexError):
            continue
        if real_uid == uid and threads:
            count += threads
    return count


def rlimits(limits):
    """{resource name: value} for a program started now under `limits`.

    RLIMIT_NPROC only when it will not run as root (the kernel does not apply it to root)
    and no cgroup caps the program's tasks instead (`processes` None)."""
    uid, _ = limits.account()
    values = {"AS": limits.memory_bytes, "CPU": limits.cpu_seconds, "FSIZE": limits.file_bytes, "CORE": 0}
    if uid != 0 and limits.processes is not None:
        values["NPROC"] = user_tasks(uid) + limits.processes
    return values


def wrap(argv, limits):
    """The command line that runs argv under `limits`."""
    settings = [f"{name}={value}" for name, value in rlimits(limits).items()]
    user = ["--user", limits.user] if limits.user is not None and limits.account()[0] != os.getuid() else []
    return [sys.executable, "-I", "-S", os.path.abspath(__file__), *user, *settings, "--", *argv]


def apply(settings):
    """Set each NAME=VALUE limit; a hard limit already lower is kept (only root may raise it)."""
    for setting in settings:
        name, _, value = setting.partition("=")
        which = getattr(resource, f"RLIMIT_{name}")
        _, hard = resource.getrlimit(which)
        limit = int(value) if hard == resource.RLIM_INFINITY else min(int(value), hard)
        resource.setrlimit(which, (limit, limit))


def become(user):
    """Drop to `user` for good: no supplementary groups, its gid, its uid."""
    entry = pwd.getpwnam(user)
    os.setgroups([])
    os.setresgid(entry.pw_gid, entry.pw_gid, entry.pw_gid)
    os.setresuid(entry.pw_uid, entry.pw_uid, entry.pw_uid)


def main(argv):
    user = None
    if argv[:1] == ["--user"] and len(argv) > 1:
        user, argv = argv[1], argv[2:]
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        print("usage: limits.py [--user NAME] NAME=VALUE... -- COMMAND ARGS...", file=sys.stderr)
        return 2
    split = argv.index("--")
    apply(argv[:split])
    if user is not None:
        become(user)
    command = argv[split + 1 :]
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"forkwatch: cannot run {command[0]}: {exc.strerror}", file=sys.stderr, flush=True)
        return 127


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
