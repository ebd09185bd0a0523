"""The watchdog: a tiny process that outlives the dashboard just long enough to clean up.

The dashboard starts it with a pipe on its stdin and tells it, line by line, which process
groups it runs servers in:

    add PGID CREATE_TIME     a server's group (its leader's PID and create time)
    remove PGID              that server has stopped
    cgroups KIND=DIR …       the servers' cgroups are made under these directories

When the pipe closes without a `bye` line — the dashboard died, even by SIGKILL, which no
handler can catch — it kills every process of the groups still recorded, in their groups
and sessions and below them, and exits. A group is touched only while its leader is gone
or is still the recorded process, so a recycled number never hits a stranger. With
cgroups, it ends everything in the servers' cgroups as well.
"""

import signal
import sys

from supervisor.proc.cgroups import kill_everything_under
from supervisor.proc.signals import kill_tree_and_wait

SWEEP_FOR = 2.0


def kill_leftovers(groups, deadline_s=SWEEP_FOR):
    """SIGKILL everything of the groups until nothing is left; returns how many were hit."""
    return len(kill_tree_and_wait(groups, sig=signal.SIGKILL, timeout=deadline_s).signalled)


def main():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    groups = {}
    parents = {}
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
            elif parts == ["bye"]:
                clean_exit = True
                break
        except ValueError:
            continue
    if (groups or parents) and not clean_exit:
        killed = kill_everything_under(parents) if parents else 0
        killed += kill_leftovers(groups) if groups else 0
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
