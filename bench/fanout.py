"""One event fanned out to K viewers: latency at every viewer, and the CPU of the dashboard and of
the viewers."""

import socket
import tempfile
import time

import psutil

from bench.helpers import ONE_ADDRESS_CROWD, TOKEN, Dashboard, summary, wait_for
from bench.viewers import ViewerCrowd


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
            latencies = []
            server_cpu0, client_cpu0, wall0 = (
                sum(server_proc.cpu_times()[:2]),
                sum(me.cpu_times()[:2]),
                time.monotonic(),
            )
            for _ in range(max(forks_each, -(-samples // count))):
                sock = socket.socket()
                started = time.monotonic()
                sock.connect(("127.0.0.1", info["port"]))
                peer = f"127.0.0.1:{sock.getsockname()[1]}"
                arrivals = wait_for(
                    lambda p=peer, c=crowd: c.seen_by_all(p), 20.0, "the fork at every viewer"
                )
                latencies.extend((arrived - started) * 1000 for arrived in arrivals)
                sock.close()
                time.sleep(0.05)  # pacing between forks, so each is measured alone
            wall = time.monotonic() - wall0
            results.append(
                {
                    "viewers": count,
                    "latency_ms": summary(latencies),
                    "server_cpu_pct": round(100 * (sum(server_proc.cpu_times()[:2]) - server_cpu0) / wall, 1),
                    "client_cpu_pct": round(100 * (sum(me.cpu_times()[:2]) - client_cpu0) / wall, 1),
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
