"""Start and stop as a viewer sees them: a clock server to RUNNING, and a forking server with
N children to STOPPED."""

import socket
import tempfile
import time

from bench.helpers import TOKEN, Dashboard, summary, wait_for
from bench.viewers import ViewerCrowd


def lifecycle(start_rounds, stop_rounds, children):
    folder = tempfile.mkdtemp(prefix="forkwatch-bench-")
    board = Dashboard(folder, TOKEN).start()
    viewer = ViewerCrowd(board.port, 1)
    starts, stops = [], []
    try:
        for _ in range(start_rounds):
            began = time.monotonic()
            board.api("POST", "/api/servers/clock/start")
            ready = wait_for(
                lambda began=began: viewer.state_time("clock", "RUNNING", began), 10.0, "RUNNING"
            )
            starts.append((ready - began) * 1000)
            board.api("POST", "/api/servers/clock/stop")
            wait_for(lambda: board.server_detail("clock")["state"] == "STOPPED", 15.0, "clock STOPPED")
        for _ in range(stop_rounds):
            info = board.start_server("forking_clock", {"delay": 120, "max_children": children + 10})
            socks = [socket.create_connection(("127.0.0.1", info["port"])) for _ in range(children)]
            wait_for(
                lambda: board.server_detail("forking_clock")["children"] >= children, 30.0, "the children"
            )
            began = time.monotonic()
            board.api("POST", "/api/servers/forking_clock/stop")
            done = wait_for(
                lambda began=began: viewer.state_time("forking_clock", "STOPPED", began), 20.0, "STOPPED"
            )
            stops.append((done - began) * 1000)
            for sock in socks:
                sock.close()
    finally:
        viewer.close()
        board.stop()
    return summary(starts), summary(stops)


def section_lifecycle(results, sizes):
    results["start_ready_ms"], results["stop_ms_100_children"] = lifecycle(
        sizes["start_rounds"], sizes["stop_rounds"], sizes["stop_children"]
    )
    print(f"start_ready_ms: {results['start_ready_ms']}", flush=True)
    print(f"stop_ms_{sizes['stop_children']}_children: {results['stop_ms_100_children']}", flush=True)
