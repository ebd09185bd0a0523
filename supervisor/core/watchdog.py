"""The watchdog: a tiny process that outlives the dashboard just long enough to clean up.

The dashboard starts it with a pipe on its stdin and tells it, line by line, which process
groups it runs servers in:

    add PGID CREATE_TIME     a server's group (its leader's PID and create time)
    remove PGID              that server has stopped
    proc PID CREATE_TIME     a process of a server's tree the dashboard has seen
    gone PID                 that process has exited
    cgroups KIND=DIR …       the servers' cgroups are made under these directories

When the pipe closes without a `bye` line — the dashboard died, even by SIGKILL, which no
handler can catch — it kills every process of the groups still recorded, in their groups
and sessions and below them, and every recorded process still alive wherever it is now
(one that called setsid() and lost its parent is in none of the groups), and exits. A
group is touched only while its leader is gone or is still the recorded process, and a
process only while it has its recorded create time, so a recycled number never hits a
stranger. With cgroups, it ends everything in the servers' cgroups as well.
"""

import signal
import sys

from supervisor.proc.cgroups import kill_everything_under
from supervisor.proc.signals import kill_tree_and_wait

SWEEP_FOR = 2.0


def kill_leftovers(groups, processes=(), deadline_s=SWEEP_FOR):
    """SIGKILL everything of the groups and each (pid, create_time) of `processes` until
    nothing is left; returns how many were hit."""
    return len(kill_tree_and_wait(groups, processes, signal.SIGKILL, deadline_s).signalled)


def main():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    groups, processes, parents = {}, {}, {}
    clean_exit = False
    for line in sys.stdin:
        parts = line.split()
        try:
            if parts[:1] == ["add"] and len(parts) == 3:
                groups[int(parts[1])] = float(parts[2])
            elif parts[:1] == ["remove"] and len(parts) == 2:
                groups.pop(int(parts[1]), None)
            elif parts[:1] == ["cgroups"]:
                parents = dict(part.split("=", 1) for part in parts[1:])
            elif parts[:1] == ["proc"] and len(parts) == 3:
                processes[int(parts[1])] = float(parts[2])
            elif parts[:1] == ["gone"] and len(parts) == 2:
                processes.pop(int(parts[1]), None)
            elif parts == ["bye"]:
                clean_exit = True
                break
        except ValueError:
            continue
    if (groups or processes or parents) and not clean_exit:
        killed = kill_everything_under(parents) if parents else 0
        if groups or processes:
            killed += kill_leftovers(groups, set(processes.items()))
        if not killed and not groups:
            return 0
        print(
            f"forkwatch watchdog: the dashboard is gone; killed {killed} processes",
            file=sys.stderr,
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
