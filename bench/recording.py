"""Recording's figures: what append() costs the publisher against no recorder (same run),
the file's size per 1,000 forks and per hour, and the time to open a one-hour recording
and seek to its end (target: under 300 ms).

    python -m bench.recording            # about half a minute
    python -m bench.recording --quick    # tiny sizes: a smoke run
"""

import argparse
import json
import os
import tempfile
import time

from bench.helpers import summary
from supervisor.core import recordings as rows
from supervisor.core.recorder import Recorder
from supervisor.core.recordings import Recordings
from supervisor.core.recordings_file import connect, open_file

SERVER = "forking_clock"
SEEK_TARGET_MS = 300


# --- a forking-clock demo's events, shaped as the manager publishes them ------------------


def process_row(pid, t, status="sleeping"):
    return {
        "pid": pid,
        "ppid": 4242,
        "create_time": round(t, 2),
        "status": status,
        "cpu_percent": 0.0,
        "rss": 9_437_184,
        "age_s": 1.5,
        "peer": f"127.0.0.1:{pid % 28000 + 32768}",
        "doing": "waiting for the client's question in recv()",
        "syscall": "recvfrom",
        "fd_target": f"tcp 127.0.0.1:12092 <- 127.0.0.1:{pid % 28000 + 32768}",
    }


def one_fork(pid, t):
    """The events one client of the forking clock causes, from fork to exit."""
    peer = f"('127.0.0.1', {pid % 28000 + 32768})"
    proc = {"server": SERVER, "t": t, **process_row(pid, t)}
    return [
        ("proc", {**proc, "kind": "fork"}),
        (
            "event",
            {
                "id": pid,
                "t": t,
                "server": SERVER,
                "kind": "fork",
                "text": f"{SERVER} forked PID {pid} for {peer}",
            },
        ),
        (
            "output",
            {
                "server": SERVER,
                "stream": "stdout",
                "lines": [f"connected at {peer}", f"forked child {pid} for {peer}"],
            },
        ),
        (
            "output",
            {
                "server": SERVER,
                "stream": "stdout",
                "lines": [
                    'read "What time is it?         " from client',
                    'writing "Fri Nov 29 10:00:00 2026" to client',
                ],
            },
        ),
        (
            "proc",
            {
                **proc,
                "kind": "status",
                "status": "zombie",
                "doing": "exited; waiting to be reaped",
                "syscall": None,
            },
        ),
        (
            "proc",
            {**proc, "kind": "exit", "status": "exited", "doing": None, "syscall": None, "fd_target": None},
        ),
        (
            "event",
            {
                "id": pid + 1,
                "t": t,
                "server": SERVER,
                "kind": "exit",
                "text": f"PID {pid} of {SERVER} is gone",
            },
        ),
    ]


def demo_events(forks, start_pid=50000, t=None):
    t = time.time() if t is None else t
    for number in range(forks):
        yield from one_fork(start_pid + number, t)


def dashboard_snapshot(t, children=8, lines=200, events=200):
    """A snapshot as large as the manager's: nine servers (two running, with their trees
    and last console lines) and the last timeline events."""
    servers = []
    for index, name in enumerate(
        (
            "clock",
            "forking_clock",
            "fork_demo",
            "web",
            "swap",
            "secret_number",
            "guess_word",
            "udp_clock",
            "unix_clock",
        )
    ):
        running = index < 2
        servers.append(
            {
                "name": name,
                "title": name.replace("_", " "),
                "state": "RUNNING" if running else "STOPPED",
                "pid": 4242 + index if running else None,
                "port": 12091 + index,
                "children": children if running else 0,
                "tree": [process_row(60000 + index * 100 + c, t) for c in range(children)] if running else [],
                "output": [f"forked child {60000 + c} for ('127.0.0.1', {40000 + c})" for c in range(lines)]
                if running
                else [],
            }
        )
    timeline = [
        {"id": i, "t": t, "server": SERVER, "kind": "fork", "text": f"{SERVER} forked PID {60000 + i}"}
        for i in range(events)
    ]
    return {"servers": servers, "events": timeline, "mechanism": "netlink", "now": t}


# --- append() on the publisher's side ------------------------------------------------------


def append_cost(count, rate, blocks):
    """Per-call time of publishing to the subscribers with and without the recorder,
    alternating blocks at `rate` events a second, and the process's CPU (writer included)."""
    with tempfile.TemporaryDirectory() as folder:
        recorder = Recorder(os.path.join(folder, "recordings.sqlite3")).start()
        recorder.begin("bench")
        try:
            fan_out = []

            def viewers(kind, payload):
                fan_out.append(kind)
                fan_out.clear()

            events = list(demo_events(count // 7 + 1))[:count]
            per_block = max(1, count // blocks)
            timings = {"off": [], "on": []}
            cpu = {"off": 0.0, "on": 0.0}
            wall = {"off": 0.0, "on": 0.0}
            for block in range(blocks * 2):
                mode = ("off", "on")[block % 2]
                subscribers = [viewers, recorder.append] if mode == "on" else [viewers]
                chunk = events[(block // 2) * per_block : (block // 2 + 1) * per_block]
                cpu_start, wall_start = time.process_time(), time.monotonic()
                for number, (kind, payload) in enumerate(chunk):
                    due = wall_start + number / rate
                    delay = due - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)  # the publishing pace, not a wait for a result
                    began = time.perf_counter_ns()
                    for callback in subscribers:
                        callback(kind, payload)
                    timings[mode].append((time.perf_counter_ns() - began) / 1000)
                if mode == "on":
                    recorder.flush()  # the writer's work counts in this block's CPU
                cpu[mode] += time.process_time() - cpu_start
                wall[mode] += time.monotonic() - wall_start
        finally:
            recorder.close()
        result = {mode: summary(values, digits=3) for mode, values in timings.items()}
        result["unit"] = "µs per publish"
        result["p95_added_us"] = round(result["on"]["p95"] - result["off"]["p95"], 3)
        result["cpu_pct"] = {mode: round(100 * cpu[mode] / wall[mode], 2) for mode in cpu}
        result["rate_per_s"] = rate
        result["dropped"] = recorder.dropped
        return result


# --- size -----------------------------------------------------------------------------------


def file_size(path):
    conn = connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return rows.used_bytes(conn)
    finally:
        conn.close()


def size_per_1000_forks(forks):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "recordings.sqlite3")
        recorder = Recorder(path).start()
        empty = file_size(path)
        recorder.begin("bench")
        for kind, payload in demo_events(forks):
            recorder.append(kind, payload)
        recorder.close()
        used = file_size(path) - empty
        return {"forks": forks, "events_per_fork": 7, "bytes_per_1000_forks": round(used * 1000 / forks)}


# --- one hour --------------------------------------------------------------------------------


def write_hour(path, seconds, forks_per_s, snapshot_every):
    """A recording of `seconds` at a lecture's pace, written with the writer's own
    functions: forks spread over time, a snapshot every `snapshot_every` s."""
    conn, _ = open_file(path)
    start = time.time() - seconds
    with rows.transaction(conn):
        rid = rows.create_recording(conn, "one hour of forks", start)
    next_snapshot, pid, last_id = start, 50000, 0
    for second in range(seconds):
        now = start + second
        batch = []
        for step in range(forks_per_s):
            t = now + step / forks_per_s
            batch += [
                (rid, t, kind, json.dumps(payload, separators=(",", ":")))
                for kind, payload in one_fork(pid, t)
            ]
            pid += 2
        with rows.transaction(conn):
            last_id = rows.insert_events(conn, batch)
            if now >= next_snapshot:
                rows.insert_snapshot(conn, rid, now, last_id, rows.encode_state(dashboard_snapshot(now)))
                next_snapshot += snapshot_every
            rows.save_tally(conn, rid, [SERVER], pid - 50000, 0)
    with rows.transaction(conn):
        rows.finish_recording(conn, rid, start + seconds)
    conn.close()
    return rid


def open_and_seek(path, rid, rounds):
    """ms to open the recordings, read one recording's metadata and its state at its end."""
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        store = Recordings(path)
        meta = store.get(rid)
        state = store.state_at(rid, meta["ended"])
        times.append((time.perf_counter() - began) * 1000)
    assert state["snapshot"] is not None
    return summary(times, digits=3), len(state["events"])


def one_hour(seconds, forks_per_s, snapshot_every, rounds):
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "recordings.sqlite3")
        began = time.monotonic()
        rid = write_hour(path, seconds, forks_per_s, snapshot_every)
        built = time.monotonic() - began
        size = file_size(path)
        seek, events_after = open_and_seek(path, rid, rounds)
        began = time.perf_counter()
        conn, moved = open_file(path)  # what a dashboard's start pays: checks, quick_check
        conn.close()
        startup_ms = (time.perf_counter() - began) * 1000
        assert moved is None
        return {
            "seconds": seconds,
            "forks_per_s": forks_per_s,
            "snapshot_every_s": snapshot_every,
            "events": seconds * forks_per_s * 7,
            "snapshots": -(-seconds // snapshot_every),
            "file_mb": round(size / 1024 / 1024, 2),
            "built_s": round(built, 1),
            "open_and_seek_to_end_ms": seek,
            "events_after_last_snapshot": events_after,
            "target_ms": SEEK_TARGET_MS,
            "open_file_at_start_ms": round(startup_ms, 1),
        }


def run(quick=False):
    sizes = {
        "append": 700 if quick else 7000,
        "rate": 1000,
        "blocks": 2 if quick else 7,
        "forks": 100 if quick else 1000,
        "seconds": 60 if quick else 3600,
        "rounds": 3 if quick else 20,
    }
    results = {"quick": quick}
    results["append"] = append_cost(sizes["append"], sizes["rate"], sizes["blocks"])
    print(f"recording append: {results['append']}", flush=True)
    results["size"] = size_per_1000_forks(sizes["forks"])
    print(f"recording size: {results['size']}", flush=True)
    results["one_hour"] = one_hour(sizes["seconds"], 1, 5, sizes["rounds"])
    print(f"recording one hour: {results['one_hour']}", flush=True)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    args = parser.parse_args(argv)
    run(args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
