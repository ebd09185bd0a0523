"""What recording costs a live demo, and what replaying one costs: fork → viewer latency
and the dashboard's CPU with recording on against off (two dashboards, in the same run,
taking turns), the recordings file's size per 1,000 forks, and opening a one-hour
recording and seeking to its end through the dashboard's API (target: under 300 ms)."""

import json
import os
import socket
import tempfile
import time
import urllib.request

import psutil

from bench.helpers import TOKEN, Dashboard, summary, wait_for
from bench.recording import SEEK_TARGET_MS, file_size, write_hour
from bench.viewers import Viewer
from supervisor.core.recordings import Recordings
from supervisor.core.recordings_file import open_file

SERVER = "forking_clock"
COST_LIMIT_PCT = 10


def recordings_path(folder):
    return os.path.join(folder, "config", "forkwatch", "recordings.sqlite3")


class Demo:
    """A dashboard (recording on or off) with the forking clock running and a viewer."""

    def __init__(self, recording):
        self.folder = tempfile.mkdtemp(prefix="forkwatch-bench-")
        self.board = Dashboard(self.folder, TOKEN, recording=recording).start()
        self.process = psutil.Process(self.board.proc.pid)
        self.viewer = Viewer(self.board.url, TOKEN)
        self.port = self.board.start_server(SERVER, {"delay": 0, "reap": True, "max_children": 600})["port"]
        self.forks = []

    def cpu_seconds(self):
        return sum(self.process.cpu_times()[:2])

    def fork_once(self):
        """One client: its fork as the viewer sees it (ms), then its exit."""
        sock = socket.socket()
        began = time.monotonic()
        sock.connect(("127.0.0.1", self.port))
        peer = f"127.0.0.1:{sock.getsockname()[1]}"
        arrived = wait_for(lambda: self.viewer.forks.get(peer), 5.0, "the fork event")
        self.forks.append((arrived - began) * 1000)
        pid = self.viewer.peer_pid[peer]
        sock.close()
        wait_for(lambda: self.viewer.exits.get(pid), 5.0, "the exit event")

    def close(self):
        self.viewer.close()
        self.board.stop()


def recording_cost(rounds):
    """Both dashboards take turns, round by round, so the machine's other load falls on
    both alike; each idles while the other serves. CPU is the dashboard process's own (its
    threads: the recorder's writer included), over the whole run."""
    on, off = Demo(recording=True), Demo(recording=False)
    try:
        began, cpu_before = time.monotonic(), {"on": on.cpu_seconds(), "off": off.cpu_seconds()}
        for number in range(rounds):
            for demo in (on, off) if number % 2 == 0 else (off, on):
                demo.fork_once()
        wall = time.monotonic() - began
        cpu = {"on": on.cpu_seconds() - cpu_before["on"], "off": off.cpu_seconds() - cpu_before["off"]}
        forks = {"on": summary(on.forks), "off": summary(off.forks)}
        on.board.api("POST", "/api/stop-all")
        wait_for(
            lambda: not on.board.api("GET", "/api/recordings")[1]["recordings"][0]["recording"],
            10.0,
            "the recording to end",
        )
    finally:
        on.close()
        off.close()
    return {
        "rounds": rounds,
        "fork_to_viewer_ms": forks,
        "p95_added_pct": _added(forks["on"]["p95"], forks["off"]["p95"]),
        "dashboard_cpu_s": {mode: round(value, 3) for mode, value in cpu.items()},
        "dashboard_cpu_pct_of_wall": {mode: round(100 * value / wall, 2) for mode, value in cpu.items()},
        "cpu_added_pct": _added(cpu["on"], cpu["off"]),
        "limit_pct": COST_LIMIT_PCT,
        "size": size_per_1000_forks(recordings_path(on.folder)),
    }


def _added(on, off):
    return round(100 * (on - off) / off, 1) if off else None


def size_per_1000_forks(path):
    """The recordings file after the demo (one recording), less an empty file's size."""
    with tempfile.TemporaryDirectory() as folder:
        empty = os.path.join(folder, "empty.sqlite3")
        open_file(empty)[0].close()
        baseline = file_size(empty)
    [meta] = Recordings(path).list()
    used = file_size(path) - baseline
    return {
        "forks": meta["forks"],
        "seconds": meta["duration"],
        "bytes": used,
        "bytes_per_1000_forks": round(used * 1000 / meta["forks"]) if meta["forks"] else None,
    }


def _get(url):
    began = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as response:
        body = response.read()
    return (time.perf_counter() - began) * 1000, body


def open_and_seek(seconds, rounds):
    """A one-hour recording (a fork a second, a snapshot every 5 s) in a dashboard's file;
    what the replay page does to open it and jump to its end: the page and the state at
    the end (`open_and_seek`); and the whole timeline, paged as the page reads it for the
    scrubber's marks after it has shown the state."""
    folder = tempfile.mkdtemp(prefix="forkwatch-bench-")
    path = recordings_path(folder)
    os.makedirs(os.path.dirname(path), mode=0o700)
    began = time.monotonic()
    rid = write_hour(path, seconds, 1, 5)
    built = time.monotonic() - began
    board = Dashboard(folder, TOKEN).start()
    try:
        base = f"{board.url}api/recordings/{rid}"
        ended = board.api("GET", f"/api/recordings/{rid}")[1]["ended"]
        parts = {"page": [], "state_at_end": [], "open_and_seek": [], "timeline_after": []}
        first_page, _ = _get(f"{board.url}recordings/{rid}")  # the first also compiles the templates
        for _ in range(rounds):
            page, _ = _get(f"{board.url}recordings/{rid}")
            timeline, after = 0.0, 0
            while True:
                took, body = _get(f"{base}/events?kind=event&limit=5000&after={after}")
                timeline += took
                answer = json.loads(body)
                after = answer["last"]
                if not answer["more"]:
                    break
            state, body = _get(f"{base}/state?t={ended}")
            assert json.loads(body)["snapshot"] is not None
            for name, value in (
                ("page", page),
                ("state_at_end", state),
                ("open_and_seek", page + state),
                ("timeline_after", timeline),
            ):
                parts[name].append(value)
    finally:
        board.stop()
    return {
        "seconds": seconds,
        "file_mb": round(os.path.getsize(path) / 1024 / 1024, 2),
        "built_s": round(built, 1),
        "first_page_ms": round(first_page, 1),
        "ms": {name: summary(values) for name, values in parts.items()},
        "target_ms": SEEK_TARGET_MS,
    }


def section_recording(results, sizes):
    results["recording_cost"] = recording_cost(sizes["recording_rounds"])
    print(f"recording_cost: {results['recording_cost']}", flush=True)
    results["recording_open_and_seek"] = open_and_seek(sizes["recording_seconds"], sizes["recording_seeks"])
    print(f"recording_open_and_seek: {results['recording_open_and_seek']}", flush=True)
