"""The lecture's fork.py: fork a child that says hello and exits, then again for each line.

    python -m servers.fork_demo          # forks at once; each line forks again; q quits

The console, as on the slides (PIDs vary; parent and child print in either order):

    press Enter to fork a child, q to quit     (forkwatch's hint, first)
    hello from parent 7080 7086
    hello from child 7086
    hello from parent 7080 7090                (after a line that is not q)
    hello from child 7090

`q` (or the end of input) ends the program with exit code 0. Output is flushed before
every fork, so a child never prints its parent's buffered lines a second time (which is
what happens when stdout is a pipe and nobody flushes). As in the lecture, exited children
stay zombies until the parent reaps them; --reap reaps each one as it exits.
"""

import argparse
import os
import signal
import sys

from servers.common import fork, reap_exited, say, stop_on_sigterm


def child():
    say("hello from child", os.getpid())
    os._exit(0)


def parent(lines, reap=False):
    children = []
    if reap:  # fix: --reap reaps each child as it exits (the lecture leaves zombies)
        signal.signal(signal.SIGCHLD, lambda signum, frame: reap_exited(children))
    say("press Enter to fork a child, q to quit")
    while True:
        newpid = fork()  # fix: output flushed first; the child drops the parent's signal handlers
        if newpid == 0:
            child()
        else:
            children.append(newpid)
            say("hello from parent", os.getpid(), newpid)
        if reap:  # a child that ended before it was in the list is reaped now
            reap_exited(children)
        line = lines.readline()
        if not line or line.strip() == "q":  # the end of input quits too
            break
    return children


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reap", action="store_true", help="reap exited children (no zombies)")
    args = parser.parse_args(argv)
    stop_on_sigterm()
    try:
        children = parent(sys.stdin, reap=args.reap)
    except KeyboardInterrupt:
        return 0
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for pid in children:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
