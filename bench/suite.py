"""forkwatch's benchmarks. Each figure is a ratio against a baseline measured in the same
run where one exists; nothing here passes or fails.

    python -m bench                     # the full run (a few minutes), writes bench/results.json
    python -m bench --quick             # tiny sizes: a smoke run
    python -m bench --only lifecycle    # one section (latency, watcher, viewers, lifecycle,
                                        # burst), printed only
"""

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import psutil
import socketio

from bench.helpers import ROOT, Dashboard, ask, child_env, wait_for
from supervisor.core.watcher import TreeWatcher
from supervisor.proc.host import raise_open_files_limit
from supervisor.proc.sources import MECHANISMS, choose_source

TOKEN = "bench-token"


def summary(values):
    """median / p95 / p99 / max (ms or whatever unit the values are in), rounded."""
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def pct(p):
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    return {
        "n": len(values),
        "median": round(statistics.median(ordered), 2),
        "p95": round(pct(95), 2),
        "p99": round(pct(99), 2),
        "max": round(ordered[-1], 2),
    }


def machine():
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "mechanisms": [m for m in MECHANISMS if _available(m)],
    }


def _available(mechanism):
    try:
        source = choose_source(mechanism)
    except OSError:
        return False
    source.close()
    return source.name == mechanism


# --- a live viewer ----------------------------------------------------------------------------


class Viewer:
    """A real Socket.IO client over WebSocket that timestamps every proc event."""

    def __init__(self, url, token=None):
        self.client = socketio.Client(reconnection=False)
        self.forks = {}  # peer -> arrival (monotonic)
        self.exits = {}  # pid -> arrival of the first exit/zombie notice
        self.peer_pid = {}
        self._lock = threading.Lock()
        self.client.on("proc", self._on_proc, namespace="/live")
        self.client.connect(
            url, transports=["websocket"], namespaces=["/live"], auth={"token": token} if token else None
        )

    def _on_proc(self, proc):
        now = time.monotonic()
        with self._lock:
            if proc["kind"] == "fork" and proc.get("peer"):
                self.forks.setdefault(proc["peer"], now)
                self.peer_pid[proc["peer"]] = proc["pid"]
            elif proc["kind"] in ("exit", "status"):
                self.exits.setdefault(proc["pid"], now)

    def close(self):
        """Disconnect without waiting: the WebSocket client waits up to 3 s for the close
        frame, and a bench must not."""
        closer = threading.Thread(target=self.client.disconnect, daemon=True)
        closer.start()
        return closer


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


# --- fork / exit to viewer --------------------------------------------------------------------


def fork_latency(mechanism, rounds, with_baseline):
    folder = tempfile.mkdtemp(prefix="forkwatch-bench-")
    board = Dashboard(folder, TOKEN, watch_mechanism=mechanism).start()
    viewer = None
    try:
        viewer = Viewer(board.url, TOKEN)
        info = board.start_server("forking_clock", {"delay": 0, "reap": True, "max_children": 600})
        baseline = BaselinePoller(info["pid"]) if with_baseline else None
        forks, exits, base = [], [], []
        for _ in range(rounds):
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


# --- what watching costs ----------------------------------------------------------------------


def forking_clock_argv(*flags):
    return [sys.executable, "-m", "servers.forking_clock", "--port", "0", "--delay", "0", *flags]


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


def watcher_cost(mechanism, children, seconds):
    """(cpu % of one core, ms per sweep) for a TreeWatcher over a tree of `children`."""
    idle = IdleChildren(children) if children else None
    root = idle.proc.pid if idle else os.getpid()
    watcher = TreeWatcher(lambda kind, payload: None, mechanism=mechanism)
    watcher.watch("bench", root, None)
    stop = threading.Event()
    used = {}

    def run():
        begin = time.thread_time()
        sweeps = watcher.sweeps
        while not stop.is_set():
            watcher.sweep()
        used["cpu"] = time.thread_time() - begin
        used["sweeps"] = watcher.sweeps - sweeps

    thread = threading.Thread(target=run)
    started = time.monotonic()
    thread.start()
    time.sleep(seconds)  # the measurement window itself: nothing to wait on
    stop.set()
    thread.join()
    wall = time.monotonic() - started
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
        "cpu_pct": round(100 * used["cpu"] / wall, 2),
        "sweep_ms": round(sweep_ms, 3),
        "process_iter_ms": round(iter_ms, 3),
        "process_iter_over_sweep": round(iter_ms / sweep_ms, 1) if sweep_ms else None,
    }


# --- viewers ------------------------------------------------------------------------------------


class ViewerCrowd:
    """K viewers over real WebSockets, served by one thread with a selector so that the
    crowd itself costs little CPU: each speaks Engine.IO/Socket.IO just enough to join
    /live, answer pings and timestamp every `proc` fork event and `server` state change it
    receives, in the order they arrive. (python-socketio's client starts a thread for every
    message, so behind the ~300 events of a stop with 100 children it would time itself.)"""

    def __init__(self, port, count):
        import selectors

        import websocket

        self.arrivals = {}  # peer -> [arrival per viewer]
        self.servers = {}  # name -> [(state, arrival)]
        self._lock = threading.Lock()
        self._selector = selectors.DefaultSelector()
        self._sockets = []
        url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
        for _ in range(count):
            ws = websocket.create_connection(url, origin=f"http://127.0.0.1:{port}", timeout=10)
            ws.recv()  # the Engine.IO open packet
            ws.send("40/live,")
            while not ws.recv().startswith("40/live"):
                pass
            self._sockets.append(ws)
            self._selector.register(ws.sock, selectors.EVENT_READ, ws)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            for key, _ in self._selector.select(0.1):
                ws = key.data
                try:
                    message = ws.recv()
                except Exception:
                    self._selector.unregister(key.fileobj)
                    continue
                now = time.monotonic()
                if message == "2":
                    ws.send("3")
                elif message.startswith('42/live,["proc"'):
                    event = json.loads(message[8:])[1]
                    if event["kind"] == "fork" and event.get("peer"):
                        with self._lock:
                            self.arrivals.setdefault(event["peer"], []).append(now)
                elif message.startswith('42/live,["server"'):
                    event = json.loads(message[8:])[1]
                    with self._lock:
                        self.servers.setdefault(event["name"], []).append((event["state"], now))

    def state_time(self, name, state, after):
        """When a viewer first saw server `name` enter `state` at or after `after`."""
        with self._lock:
            return next((t for s, t in self.servers.get(name, []) if s == state and t >= after), None)

    def seen_by_all(self, peer):
        with self._lock:
            found = self.arrivals.get(peer, [])
            return list(found) if len(found) >= len(self._sockets) else None

    def close(self):
        self._stop.set()
        self._thread.join(5)
        for ws in self._sockets:
            try:
                ws.sock.close()
            except OSError:
                pass


def viewers_fan_out(counts, forks_each):
    folder = tempfile.mkdtemp(prefix="forkwatch-bench-")
    board = Dashboard(folder, TOKEN).start()
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
            for _ in range(forks_each):
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


# --- start, stop -------------------------------------------------------------------------------


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


# --- a burst of clients ---------------------------------------------------------------------------

STDLIB_FORKING = """
import socketserver, sys, time
class Clock(socketserver.StreamRequestHandler):
    def handle(self):
        self.rfile.read(25)
        self.wfile.write((time.ctime() + "\\n").encode())
class Server(socketserver.ForkingTCPServer):
    allow_reuse_address = True
    request_queue_size = 4096
    max_children = 600
with Server(("127.0.0.1", 0), Clock) as server:
    print("listening on tcp://127.0.0.1:%d" % server.server_address[1], flush=True)
    server.serve_forever()
"""


def burst(argv, clients):
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=child_env(), cwd=ROOT, start_new_session=True)
    port = int(proc.stdout.readline().decode().rsplit(":", 1)[1])
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    outcome = {"answered": 0, "refused": 0, "lost": 0}
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def client():
        barrier.wait()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                data = ask(sock)
            kind = "answered" if len(data) == 25 else "refused" if data.startswith(b"server busy") else "lost"
        except OSError:
            kind = "lost"
        with lock:
            outcome[kind] += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    began = time.monotonic()
    for thread in threads:
        thread.join(60)
    elapsed = time.monotonic() - began
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(30)
    proc.stdout.close()
    outcome["conn_per_s"] = round(clients / elapsed, 1)
    return outcome


def forking_burst(clients):
    ours = burst(forking_clock_argv("--reap", "--max-children", "600"), clients)
    stdlib = burst([sys.executable, "-c", STDLIB_FORKING], clients)
    return {
        "clients": clients,
        "forking_clock": ours,
        "stdlib_ForkingTCPServer": stdlib,
        "ratio": round(ours["conn_per_s"] / stdlib["conn_per_s"], 2) if stdlib["conn_per_s"] else None,
    }


# --- the run ----------------------------------------------------------------------------------------


def sizes_for(quick):
    return {
        "rounds": 5 if quick else 60,
        "cost_children": (0, 5) if quick else (0, 100, 1000),
        "cost_seconds": 0.5 if quick else 10.0,
        "viewers": (1, 3) if quick else (1, 10, 50, 100, 200),
        "forks_each": 2 if quick else 10,
        "start_rounds": 2 if quick else 10,
        "stop_rounds": 1 if quick else 3,
        "stop_children": 5 if quick else 100,
        "burst": 20 if quick else 500,
    }


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


def section_watcher(results, sizes):
    results["watcher_cpu_pct"] = {}
    for mechanism in results["machine"]["mechanisms"]:
        rows = [watcher_cost(mechanism, n, sizes["cost_seconds"]) for n in sizes["cost_children"]]
        results["watcher_cpu_pct"][mechanism] = rows
        for row in rows:
            print(f"watcher[{mechanism}]: {row}", flush=True)


def section_viewers(results, sizes):
    results["viewers"] = viewers_fan_out(sizes["viewers"], sizes["forks_each"])
    for row in results["viewers"]:
        print(f"viewers: {row}", flush=True)


def section_lifecycle(results, sizes):
    results["start_ready_ms"], results["stop_ms_100_children"] = lifecycle(
        sizes["start_rounds"], sizes["stop_rounds"], sizes["stop_children"]
    )
    print(f"start_ready_ms: {results['start_ready_ms']}", flush=True)
    print(f"stop_ms_{sizes['stop_children']}_children: {results['stop_ms_100_children']}", flush=True)


def section_burst(results, sizes):
    results["forking_burst"] = forking_burst(sizes["burst"])
    print(f"forking_burst: {results['forking_burst']}", flush=True)


SECTIONS = {
    "latency": section_latency,
    "watcher": section_watcher,
    "viewers": section_viewers,
    "lifecycle": section_lifecycle,
    "burst": section_burst,
}


def run(quick=False, out=None, only=None, **size_overrides):
    """Run the sections named in `only` (default: all, in order) and return the figures;
    `size_overrides` replace single sizes (e.g. stop_rounds=20)."""
    sizes = {**sizes_for(quick), **size_overrides}
    raise_open_files_limit()
    results = {"machine": machine(), "quick": quick}
    print(f"machine: {results['machine']}", flush=True)
    for name, section in SECTIONS.items():
        if only is None or name in only:
            section(results, sizes)
    if out:
        with open(out, "w") as handle:
            json.dump(results, handle, indent=2)
        print(f"written to {out}", flush=True)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument(
        "--only",
        action="append",
        choices=list(SECTIONS),
        help="run this section only (repeatable); figures are printed, results.json is left alone",
    )
    parser.add_argument("--stop-rounds", type=int, help="how many stops with children to time")
    parser.add_argument("--out", default=None, help="where to write the figures (default bench/results.json)")
    args = parser.parse_args(argv)
    out = args.out
    if out is None and not args.only:
        out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results.json")
    overrides = {"stop_rounds": args.stop_rounds} if args.stop_rounds else {}
    run(args.quick, out, args.only, **overrides)
    return 0
