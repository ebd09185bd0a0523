"""Benchmarks of knowing what each process is doing: the kernel's answer and the Python line.

doing_cost  at 100 and 1,000 idle children of the forking clock server: the tree
            watcher's own CPU with `doing` read (as the dashboard runs it) against the
            same watcher without it, in percent of one core and as the points it adds
            (`watcher_*`); and the stats tick alone, with and without the readings.
stack_ms    n / median / p95 / p99 / max of one py-spy stack read of a child sleeping in its delay.

python -m bench.doing [--quick]     # prints the figures as JSON
python -m bench --only doing        # the same, as a section of the suite
"""

import argparse
import collections
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

from bench.helpers import ROOT, child_env, summary, wait_for
from bench.watching import watcher_cpu
from supervisor.core.process import ADDRESS_LINE
from supervisor.core.watcher import TreeWatcher
from supervisor.proc import blocking
from supervisor.proc.host import raise_open_files_limit
from supervisor.proc.pystack import StackReader
from supervisor.proc.stat import descendants, read_stat

TICK_S = 1.0  # the watcher's stats cadence: one reading per process per second


class ForkedTree:
    """servers.forking_clock with one connected client per wanted child; the children sit
    idle (waiting for their client's question, or sleeping their delay)."""

    def __init__(self, children, delay=0.0):
        raise_open_files_limit()
        self.server = subprocess.Popen(
            [sys.executable, "-m", "servers.forking_clock", "--port", "0", "--delay", str(delay)]
            + ["--max-children", str(children + 10)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=child_env(),
            cwd=ROOT,
            start_new_session=True,
        )
        address = ADDRESS_LINE.match(self.server.stdout.readline().decode().strip())
        self.port = int(address.group(3))
        self._drain = threading.Thread(target=self.server.stdout.read, daemon=True)  # to EOF
        self._drain.start()
        self.clients = [
            socket.create_connection(("127.0.0.1", self.port), timeout=30) for _ in range(children)
        ]
        self.wanted = children

    def children(self):
        """Stats of the server's children once all of them exist and are blocked."""

        def all_idle():
            found = [s for s in descendants(self.server.pid) if s.state == "S"]
            return found if len(found) >= self.wanted else None

        return wait_for(all_idle, 120, f"{self.wanted} idle children")

    def close(self):
        for client in self.clients:
            client.close()
        os.killpg(self.server.pid, signal.SIGKILL)
        self.server.wait(30)
        self._drain.join(30)
        self.server.stdout.close()


def _tick_cpu_s(pids, reader, ticks):
    """CPU seconds of one tick over pids (median of `ticks`), and the first tick's."""
    used = []
    for _ in range(ticks):
        begin = time.thread_time()
        for pid in pids:
            stat = read_stat(pid)
            if reader is not None and stat is not None:
                reader.read(pid, stat)
        used.append(time.thread_time() - begin)
    return statistics.median(used), used[0]


def _watcher_cpu_pct(tree, read_doing, seconds):
    """CPU % of one core of a TreeWatcher over the tree, reading `doing` or not."""
    watcher = TreeWatcher(lambda kind, payload: None, read_doing=read_doing)
    try:
        watcher.watch("bench", tree.server.pid, tree.port, child_delay_s=0)
        return watcher_cpu(watcher, seconds)
    finally:
        watcher.unwatch("bench")
        watcher.close()


def doing_cost(counts=(100, 1000), ticks=10, seconds=10.0, rounds=4):
    """{children: {watcher_off_cpu_pct, watcher_on_cpu_pct, watcher_added_pp, off_cpu_pct,
    on_cpu_pct, added_pp, per_process_us, first_tick_ms, states}}, one tick a second.

    The watcher runs `seconds` each way, in `rounds` alternating windows (off, on, off, …):
    others' forks anywhere on the machine reach it too, and alternating spreads them over
    both; the figures are the medians, the points added the median of each pair's."""
    results = {}
    for count in counts:
        tree = ForkedTree(count)
        try:
            pids = [stat.pid for stat in tree.children()]
            pairs = [
                (
                    _watcher_cpu_pct(tree, False, seconds / rounds),
                    _watcher_cpu_pct(tree, True, seconds / rounds),
                )
                for _ in range(rounds)
            ]
            off, _ = _tick_cpu_s(pids, None, ticks)
            reader = blocking.BlockingReader(every_wchan=False)  # as the watcher reads
            on, first = _tick_cpu_s(pids, reader, ticks)
            states = collections.Counter(r.syscall or r.state for r in map(reader.read, pids))
        finally:
            tree.close()
        results[str(count)] = {
            "watcher_off_cpu_pct": round(statistics.median(off for off, _ in pairs), 2),
            "watcher_on_cpu_pct": round(statistics.median(on for _, on in pairs), 2),
            "watcher_added_pp": round(statistics.median(on - off for off, on in pairs), 2),
            "off_cpu_pct": round(100 * off / TICK_S, 3),
            "on_cpu_pct": round(100 * on / TICK_S, 3),
            "added_pp": round(100 * (on - off) / TICK_S, 3),
            "per_process_us": round(1e6 * (on - off) / len(pids), 1),
            "first_tick_ms": round(1000 * first, 2),
            "states": dict(states),
        }
    return results


def stack_ms(reads=20):
    """The summary of one py-spy read (ms) of a forked child sleeping in its delay."""
    tree = ForkedTree(1, delay=3600)
    try:
        child = tree.children()[0].pid
        wait_for(lambda: blocking.read_blocking(child).left_s is not None, 10, "the child to sleep")
        reader = StackReader()
        times = []
        for _ in range(reads):
            begin = time.perf_counter()
            reader.read(child)
            times.append(1000 * (time.perf_counter() - begin))
    finally:
        tree.close()
    return summary(times)


def run(quick=False):
    """Both figures; `quick` uses tiny sizes (a smoke run)."""
    if quick:
        return {
            "doing_cost": doing_cost(counts=(5,), ticks=2, seconds=0.4, rounds=2),
            "stack_ms": stack_ms(reads=2),
        }
    return {"doing_cost": doing_cost(), "stack_ms": stack_ms()}


def section_doing(results, sizes):
    """The suite's section: doing_cost and stack_ms."""
    results["doing_cost"] = doing_cost(sizes["doing_children"], seconds=sizes["cost_seconds"])
    for count, row in results["doing_cost"].items():
        print(f"doing_cost[{count} children]: {row}", flush=True)
    results["stack_ms"] = stack_ms(sizes["stack_reads"])
    print(f"stack_ms: {results['stack_ms']}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    args = parser.parse_args(argv)
    print(json.dumps(run(quick=args.quick), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
