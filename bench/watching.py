"""What watching costs: the watcher's CPU (reading what each process is doing, as the
dashboard does) and one sweep's work over N idle children, per mechanism, against psutil's
process_iter() by parent."""

import os
import signal
import socket
import statistics
import subprocess
import threading
import time

import psutil

from bench.helpers import ROOT, child_env, forking_clock_argv, wait_for
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
    """(cpu % of one core, ms per sweep) for a TreeWatcher over a tree of `children`."""
    idle = IdleChildren(children) if children else None
    root = idle.proc.pid if idle else os.getpid()
    watcher = TreeWatcher(lambda kind, payload: None, mechanism=mechanism)
    watcher.watch("bench", root, None)
    cpu_pct = watcher_cpu(watcher, seconds)
    # One sweep's work, timed without its wait: drain the source and apply what it said
    # (a /proc listing and a pidfd poll, a netlink read, or a psutil pass).
    timings = []
    for _ in range(20):
        begin = time.perf_counter()
        watcher.apply(watcher.source.drain())
        timings.append((time.perf_counter() - begin) * 1000)
    scan = []
    for _ in range(20):
        begin = time.perf_counter()
        [p for p in psutil.process_iter(["ppid"]) if p.info["ppid"] == root]
        scan.append((time.perf_counter() - begin) * 1000)
    watcher.unwatch("bench")
    watcher.close()
    if idle:
        idle.close()
    sweep_ms = statistics.median(timings)
    iter_ms = statistics.median(scan)
    return {
        "children": children,
        "cpu_pct": cpu_pct,
        "sweep_ms": round(sweep_ms, 3),
        "process_iter_ms": round(iter_ms, 3),
        "process_iter_over_sweep": round(iter_ms / sweep_ms, 1) if sweep_ms else None,
    }


def section_watcher(results, sizes):
    results["watcher_cpu_pct"] = {}
    for mechanism in results["machine"]["mechanisms"]:
        rows = [watcher_cost(mechanism, n, sizes["cost_seconds"]) for n in sizes["cost_children"]]
        results["watcher_cpu_pct"][mechanism] = rows
        for row in rows:
            print(f"watcher[{mechanism}]: {row}", flush=True)
