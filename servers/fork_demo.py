"""The lecture's fork.py: each line on stdin forks a child that says hello and exits.

    python -m servers.fork_demo          # Enter forks a child, q (or end of input) quits

Output is flushed before every fork, so a child never prints its parent's buffered lines a
second time (which is what happens when stdout is a pipe and nobody flushes). As in the
lecture, exited children stay zombies until the parent reaps them; --reap reaps at once.
"""

import argparse
import os
import signal
import sys

from servers.common import reset_signals_in_child, say


def child():
    say("hello from child", os.getpid())
    os._exit(0)


def reap_exited(children):
    """waitpid() each known child that has exited; by PID, never waitpid(-1)."""
    for pid in list(children):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            children.remove(pid)


def parent(lines, reap=False):
    children = []
    if reap:
        signal.signal(signal.SIGCHLD, lambda signum, frame: reap_exited(children))
    say("press Enter to fork a child, q to quit")
    for line in lines:
        if line.strip() == "q":
            break
        sys.stdout.flush()
        sys.stderr.flush()
        newpid = os.fork()
        if newpid == 0:
            reset_signals_in_child()
            child()
        children.append(newpid)
        say("hello from parent", os.getpid(), newpid)
    say("parent exits")
    return children


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reap", action="store_true", help="reap exited children (no zombies)")
    args = parser.parse_args(argv)
    try:
        children = parent(sys.stdin, reap=args.reap)
    except KeyboardInterrupt:
        return 0
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for pid in list(children):
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
