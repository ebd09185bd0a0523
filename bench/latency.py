"""Fork and exit to viewer: a client connects, the fork event reaches a real viewer; against a
1 s psutil poll in its own process, in the same run. Each round starts at a random moment of
the poll's second, so the baseline is not measured in step with its poller."""

import random
import socket
import subprocess
import sys
import tempfile
import threading
import time

from bench.helpers import TOKEN, Dashboard, summary, wait_for
from bench.viewers import Viewer

BASELINE_POLLER = """
import sys, time, psutil
root = psutil.Process(int(sys.argv[1]))
seen = set()
while True:
    for child in root.children():
        if child.pid not in seen:
            seen.add(child.pid)
            print(child.pid, time.monotonic(), flush=True)
    time.sleep(float(sys.argv[2]))
"""


class BaselinePoller:
    """What slow tools do: psutil children() once a second, in a process of its own (as
    those tools are); records when each PID is first seen (CLOCK_MONOTONIC is system-wide)."""

    def __init__(self, root_pid, interval=1.0):
        self.interval = interval
        self.seen = {}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", BASELINE_POLLER, str(root_pid), str(interval)],
            stdout=subprocess.PIPE,
            text=True,
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        for line in self.proc.stdout:
            pid, seen = line.split()
            self.seen.setdefault(int(pid), float(seen))

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self._thread.join(5)
        self.proc.stdout.close()


def fork_latency(mechanism, rounds, with_baseline):
    folder = tempfile.mkdtemp(prefix="forkwatch-bench-")
    board = Dashboard(folder, TOKEN, watch_mechanism=mechanism).start()
    viewer = None
    try:
        viewer = Viewer(board.url, TOKEN)
        info = board.start_server("forking_clock", {"delay": 0, "reap": True, "max_children": 600})
        baseline = BaselinePoller(info["pid"]) if with_baseline else None
        phase = random.Random(rounds)
        forks, exits, base = [], [], []
        for _ in range(rounds):
            if baseline is not None:
                time.sleep(phase.uniform(0.0, baseline.interval))  # a random phase of its poll
            sock = socket.socket()
            started = time.monotonic()
            sock.connect(("127.0.0.1", info["port"]))
            peer = f"127.0.0.1:{sock.getsockname()[1]}"
            arrived = wait_for(lambda peer=peer: viewer.forks.get(peer), 5.0, "the fork event")
            forks.append((arrived - started) * 1000)
            pid = viewer.peer_pid[peer]
            if baseline is not None:
                seen = wait_for(lambda pid=pid: baseline.seen.get(pid), 5.0, "the baseline to see it")
                base.append((seen - started) * 1000)
            closed = time.monotonic()
            sock.close()
            gone = wait_for(lambda pid=pid: viewer.exits.get(pid), 5.0, "the exit event")
            exits.append((gone - closed) * 1000)
        if baseline is not None:
            baseline.stop()
        return forks, exits, base
    finally:
        if viewer is not None:
            viewer.close()
        board.stop()


def section_latency(results, sizes):
    mechanisms = results["machine"]["mechanisms"]
    results["fork_to_viewer_ms"], results["exit_to_viewer_ms"] = {}, {}
    baseline = []
    for mechanism in mechanisms:
        forks, exits, base = fork_latency(
            mechanism, sizes["rounds"], with_baseline=mechanism == mechanisms[0]
        )
        results["fork_to_viewer_ms"][mechanism] = summary(forks)
        results["exit_to_viewer_ms"][mechanism] = summary(exits)
        baseline = baseline or base
        print(f"fork_to_viewer_ms[{mechanism}]: {summary(forks)}  exit: {summary(exits)}", flush=True)
    results["baseline_1s_poll_ms"] = summary(baseline)
    best = min(results["fork_to_viewer_ms"].values(), key=lambda s: s["p95"])
    results["fork_to_viewer_speedup"] = (
        round(results["baseline_1s_poll_ms"]["p95"] / best["p95"], 1) if best["p95"] else None
    )
    print(
        f"baseline_1s_poll_ms: {results['baseline_1s_poll_ms']}  speedup: {results['fork_to_viewer_speedup']}x",
        flush=True,
    )
