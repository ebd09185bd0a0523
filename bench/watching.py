"""What watching costs: the watcher's CPU (reading what each process is doing, as the
dashboard does) over N idle children per mechanism, and the time of one full cycle of its
work (drain the source and apply it, recheck zombies, the periodic rescan where the source
needs one, every process's cpu, memory and activity); beside it, what one psutil
process_iter() over the machine costs (a different job: a listing, no stats)."""

import os
import signal
import socket
import statistics
import subprocess
import threading
import time

import psutil

from bench.helpers import ROOT, child_env, forking_clock_argv, summary, wait_for
from supervisor.core.watcher import TreeWatcher


class IdleChildren:
    """forking_clock with N idle children (each waits for its client's question)."""

    def __init__(self, count):
        self.proc = subprocess.Popen(
            forking_clock_argv("--max-children", str(count + 10)),
            stdout=subprocess.PIPE,
            env=child_env(),
            cwd=ROOT,
            start_new_session=True,
        )
        line = self.proc.stdout.readline().decode()
        self.port = int(line.rsplit(":", 1)[1])
        threading.Thread(target=self._drain, daemon=True).start()
        self.socks = [socket.create_connection(("127.0.0.1", self.port)) for _ in range(count)]
        wait_for(lambda: len(psutil.Process(self.proc.pid).children()) >= count, 60.0, f"{count} children")

    def _drain(self):
        for _ in self.proc.stdout:
            pass

    def close(self):
        for sock in self.socks:
            sock.close()
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(30)
        self.proc.stdout.close()


def watcher_cpu(watcher, seconds):
    """CPU of `watcher`'s loop (its own thread) over `seconds`, in percent of one core."""
    stop = threading.Event()
    used = {}

    def run():
        begin = time.thread_time()
        while not stop.is_set():
            watcher.sweep()
        used["cpu"] = time.thread_time() - begin

    thread = threading.Thread(target=run)
    started = time.monotonic()
    thread.start()
    time.sleep(seconds)  # the measurement window itself: nothing to wait on
    stop.set()
    thread.join()
    return round(100 * used["cpu"] / (time.monotonic() - started), 2)


def watcher_cost(mechanism, children, seconds):
    """cpu % of one core, one full cycle's ms and process_iter()'s ms for a TreeWatcher over
    a tree of `children`."""
    idle = IdleChildren(children) if children else None
    root = idle.proc.pid if idle else os.getpid()
    watcher = TreeWatcher(lambda kind, payload: None, mechanism=mechanism)
    watcher.watch("bench", root, None)
    cpu_pct = watcher_cpu(watcher, seconds)
    watcher.unwatch("bench")
    watcher.close()
    cycle = full_cycle_ms(mechanism, root)
    scan = []
    for _ in range(20):
        begin = time.perf_counter()
        [p for p in psutil.process_iter(["ppid"]) if p.info["ppid"] == root]
        scan.append((time.perf_counter() - begin) * 1000)
    if idle:
        idle.close()
    return {
        "children": children,
        "cpu_pct": cpu_pct,
        "cycle_ms": summary(cycle, digits=3),
        "process_iter_ms": round(statistics.median(scan), 3),
    }


def full_cycle_ms(mechanism, root, cycles=20):
    """One full cycle of the watcher's work, timed: a watcher whose every cadence is due at
    every sweep (stats, zombies and rescan intervals of 0), so a sweep waits for nothing and
    does all of it."""
    watcher = TreeWatcher(
        lambda kind, payload: None,
        mechanism=mechanism,
        stats_interval=0,
        zombie_interval=0,
        rescan_interval=0,
    )
    watcher.watch("bench", root, None)
    times = []
    for _ in range(cycles):
        begin = time.perf_counter()
        watcher.sweep()
        times.append((time.perf_counter() - begin) * 1000)
    watcher.unwatch("bench")
    watcher.close()
    return times


def section_watcher(results, sizes):
    results["watcher_cpu_pct"] = {}
    for mechanism in results["machine"]["mechanisms"]:
        rows = [watcher_cost(mechanism, n, sizes["cost_seconds"]) for n in sizes["cost_children"]]
        results["watcher_cpu_pct"][mechanism] = rows
        for row in rows:
            print(f"watcher[{mechanism}]: {row}", flush=True)
