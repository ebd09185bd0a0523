"""A burst of clients at once against forking_clock, and against the stdlib's ForkingTCPServer
doing the same job in the same run."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

from bench.helpers import ROOT, ask, child_env, forking_clock_argv

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


def section_burst(results, sizes):
    results["forking_burst"] = forking_burst(sizes["burst"])
    print(f"forking_burst: {results['forking_burst']}", flush=True)
