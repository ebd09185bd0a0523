"""A live dashboard under load: a fork flood against a capped server, and viewers that come and go."""

import random
import socket
import threading
import time

import psutil
import pytest
import socketio

from bench.helpers import ONE_ADDRESS_CROWD
from tests.helpers import TOKEN, Dashboard, ask, wait_for


@pytest.mark.reliability("faults", "fork flood: 2,000 connections at forking_clock --max-children 100")
def test_fork_flood_respects_the_cap_and_the_dashboard_stays_responsive(live, report):
    info = live.start_server("forking_clock", {"delay": 0.5, "reap": True, "max_children": 100})
    dashboard = psutil.Process(live.proc.pid)
    fds_before, threads_before = dashboard.num_fds(), dashboard.num_threads()
    server = psutil.Process(info["pid"])
    peak, api_ms = [0], []
    outcome = {"answered": 0, "busy": 0, "lost": 0}
    lock = threading.Lock()
    flood_over = threading.Event()

    def watch_cap():  # samples the live children every 5 ms until the flood is over
        while not flood_over.wait(0.005):
            try:
                live_children = [c for c in server.children() if c.status() != psutil.STATUS_ZOMBIE]
            except psutil.NoSuchProcess:
                break
            peak[0] = max(peak[0], len(live_children))

    def poll_api():  # an API call every 20 ms while the flood lasts
        while not flood_over.wait(0.02):
            began = time.monotonic()
            status, _ = live.api("GET", "/api/servers", token=False)
            assert status == 200
            api_ms.append((time.monotonic() - began) * 1000)

    def client(count):
        for _ in range(count):
            try:
                with socket.create_connection(("127.0.0.1", info["port"]), timeout=30) as sock:
                    data = ask(sock)
                kind = "answered" if len(data) == 25 else "busy" if data == b"server busy\n" else "lost"
            except OSError:
                kind = "lost"
            with lock:
                outcome[kind] += 1

    helpers = [threading.Thread(target=watch_cap), threading.Thread(target=poll_api)]
    clients = [threading.Thread(target=client, args=(20,)) for _ in range(100)]  # 100 x 20 = 2,000
    for thread in helpers + clients:
        thread.start()
    for thread in clients:
        thread.join(120)
    flood_over.set()
    for thread in helpers:
        thread.join(10)
    assert sum(outcome.values()) == 2000
    assert outcome["lost"] == 0 and outcome["busy"] > 0 and outcome["answered"] > 0
    assert peak[0] <= 100
    api_ms.sort()
    p99 = api_ms[int(0.99 * (len(api_ms) - 1))]
    assert p99 < 2000, f"the API's p99 during the flood was {p99:.0f} ms"
    wait_for(lambda: live.server_detail("forking_clock")["children"] == 0, 15, "every child reaped")
    wait_for(lambda: dashboard.num_fds() <= fds_before + 2, 15, "the dashboard's descriptors back to normal")
    wait_for(
        lambda: dashboard.num_threads() <= threads_before + 2, 15, "the dashboard's threads back to normal"
    )
    report["cases"] = 2000
    report["detail"] = (
        f"{outcome['answered']} answered, {outcome['busy']} got `server busy`, 0 lost; live children peaked at "
        f"{peak[0]}; API p99 {p99:.0f} ms during the flood; no descriptor or thread leaked"
    )


@pytest.fixture
def crowd_board(tmp_path):
    """A dashboard for a hundred viewers that all come from 127.0.0.1 (in a room they are a
    hundred laptops, each under the limits per address, which are lifted here)."""
    board = Dashboard(str(tmp_path), TOKEN, **ONE_ADDRESS_CROWD).start()
    yield board
    board.stop()


@pytest.mark.reliability("faults", "100 Socket.IO viewers connecting and dropping at random for 30 s")
def test_viewers_churn_leaks_nothing(crowd_board, report):
    live = crowd_board
    dashboard = psutil.Process(live.proc.pid)
    info = live.start_server("forking_clock", {"delay": 0, "reap": True})
    fds_before, threads_before, rss_before = (
        dashboard.num_fds(),
        dashboard.num_threads(),
        dashboard.memory_info().rss,
    )
    rng = random.Random(7)
    pool = [socketio.Client(reconnection=False) for _ in range(100)]
    connects = 0
    deadline = time.monotonic() + 30.0
    steps = 0
    closers = []
    while time.monotonic() < deadline and steps < 5000:
        steps += 1
        client = rng.choice(pool)
        if any(t.is_alive() and t.name == str(id(client)) for t in closers):
            continue  # still closing
        if client.connected:
            # The WebSocket client waits for the close frame; drop it in the background.
            closer = threading.Thread(target=client.disconnect, name=str(id(client)), daemon=True)
            closer.start()
            closers.append(closer)
        else:
            client.connect(
                live.url,
                transports=[rng.choice(["websocket", "polling"])],
                namespaces=["/live"],
                wait_timeout=5,
            )
            connects += 1
        if steps % 25 == 0:  # keep events flowing while viewers churn
            with socket.create_connection(("127.0.0.1", info["port"])) as sock:
                assert len(ask(sock)) == 25
            assert live.api("GET", "/healthz", token=False) == (200, {"ok": True})
    for client in pool:
        if client.connected:
            closer = threading.Thread(target=client.disconnect, daemon=True)
            closer.start()
            closers.append(closer)
    for closer in closers:
        closer.join(15)
    wait_for(lambda: dashboard.num_fds() <= fds_before + 3, 20, "descriptors back to their baseline")
    wait_for(lambda: dashboard.num_threads() <= threads_before + 3, 20, "threads back to their baseline")
    growth = (dashboard.memory_info().rss - rss_before) / 1024 / 1024
    assert growth < 64, f"the dashboard grew by {growth:.1f} MiB"
    report["cases"] = connects
    report["detail"] = f"threads and descriptors back to baseline; memory grew {growth:.1f} MiB"
