"""One event fanned out to K viewers: latency at every viewer, and the CPU of the dashboard and of
the viewers."""

import socket
import tempfile
import time

import psutil

from bench.helpers import ONE_ADDRESS_CROWD, TOKEN, Dashboard, summary, wait_for
from bench.viewers import ViewerCrowd


def time_forks(crowd, port, forks):
    """Connect `forks` clients to the forking clock on `port`, one at a time; the latencies
    (ms) from each client's connect() to its fork arriving at every viewer of `crowd`."""
    latencies = []
    for _ in range(forks):
        sock = socket.socket()
        started = time.monotonic()
        sock.connect(("127.0.0.1", port))
        peer = f"127.0.0.1:{sock.getsockname()[1]}"
        arrivals = wait_for(lambda p=peer: crowd.seen_by_all(p), 20.0, "the fork at every viewer")
        latencies.extend((arrived - started) * 1000 for arrived in arrivals)
        sock.close()
        time.sleep(0.05)  # pacing between forks, so each is measured alone
    return latencies


class CpuMeter:
    """The CPU (user + system) that groups of processes use from now until `read()`, as %
    of one core over the wall time: `CpuMeter(server=[proc], client=[me])`."""

    def __init__(self, **groups):
        self.groups = groups
        self.started = time.monotonic()
        self.before = {name: self._seconds(procs) for name, procs in groups.items()}

    @staticmethod
    def _seconds(procs):
        return sum(sum(proc.cpu_times()[:2]) for proc in procs)

    def read(self):
        wall = time.monotonic() - self.started
        return {
            name: round(100 * (self._seconds(procs) - self.before[name]) / wall, 1)
            for name, procs in self.groups.items()
        }


def viewers_fan_out(counts, forks_each, samples=100):
    """For each count of viewers, forks_each forks, or more so that at least `samples`
    arrivals are timed (100 forks for one viewer)."""
    folder = tempfile.mkdtemp(prefix="forkwatch-bench-")
    board = Dashboard(folder, TOKEN, **ONE_ADDRESS_CROWD).start()
    results = []
    try:
        info = board.start_server("forking_clock", {"delay": 0, "reap": True})
        server_proc = psutil.Process(board.proc.pid)
        me = psutil.Process()
        for count in counts:
            crowd = ViewerCrowd(board.port, count)
            meter = CpuMeter(server=[server_proc], client=[me])
            latencies = time_forks(crowd, info["port"], max(forks_each, -(-samples // count)))
            cpu = meter.read()
            results.append(
                {
                    "viewers": count,
                    "latency_ms": summary(latencies),
                    "server_cpu_pct": cpu["server"],
                    "client_cpu_pct": cpu["client"],
                }
            )
            crowd.close()
    finally:
        board.stop()
    return results


def section_viewers(results, sizes):
    results["viewers"] = viewers_fan_out(sizes["viewers"], sizes["forks_each"], sizes["viewer_samples"])
    for row in results["viewers"]:
        print(f"viewers: {row}", flush=True)
