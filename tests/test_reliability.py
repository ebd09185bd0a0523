"""Reliability and security: faults, floods, bad input at scale and intruders. Each test
fills a row of the README's reliability table (see conftest.report)."""

import hmac
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import psutil
import pytest
import socketio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from playwright.sync_api import expect

from supervisor.proc.stat import create_time_of, is_alive
from tests.core_support import TOKEN, wait_state
from tests.support import (
    QUESTION,
    ROOT,
    Dashboard,
    ServerProcess,
    ask,
    child_env,
    recv_all,
    wait_for,
)

BEARER = {"Authorization": f"Bearer {TOKEN}"}
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


def tree_of(pid):
    try:
        return [pid, *[p.pid for p in psutil.Process(pid).children(recursive=True)]]
    except psutil.NoSuchProcess:
        return []


def alive(pids):
    found = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                found.append(pid)
        except psutil.NoSuchProcess:
            continue
    return found


# --- faults ---------------------------------------------------------------------------------------


@pytest.mark.reliability("faults", "kill -9 of the dashboard with 2 servers and 20 forked children")
def test_kill_9_of_the_dashboard_leaves_nothing_and_the_next_start_says_so(tmp_path, report):
    board = Dashboard(str(tmp_path), TOKEN).start()
    port = board.port
    try:
        info = board.start_server("forking_clock", {"delay": 120})
        board.start_server("web")
        socks = [socket.create_connection(("127.0.0.1", info["port"])) for _ in range(20)]
        wait_for(lambda: board.server("forking_clock")["children"] == 20, what="20 children")
        victims = [p for p in tree_of(board.proc.pid) if p != board.proc.pid]
        assert len(victims) >= 23  # 2 servers, 20 children, the watchdog
        began = time.monotonic()
        board.proc.send_signal(signal.SIGKILL)
        wait_for(lambda: not alive(victims), 2.0, "every server and child gone")
        gone_in = time.monotonic() - began
        board.stop()
        for sock in socks:
            sock.close()
        board.port = port
        board.start()
        events = board.api("GET", "/api/events?after=0")[1]["events"]
        assert any("did not stop cleanly (2 server groups were running)" in e["text"] for e in events)
        report["cases"] = len(victims)
        report["detail"] = f"all gone in {gone_in * 1000:.0f} ms; the next start reported it"
    finally:
        board.stop()


@pytest.mark.reliability("faults", "port already taken by another program (the page says who)")
def test_port_taken_is_fatal_and_the_page_names_the_holder(page, tmp_path, run_server, report):
    holder = run_server("clock", "--port", "0")
    board = Dashboard(str(tmp_path), TOKEN, ports={"clock": holder.port}).start()
    try:
        page.goto(f"{board.url}?token={TOKEN}")
        box = page.locator("#card-clock")
        box.locator("button[data-command=start]").click()
        expect(box.locator("[data-field=state]")).to_have_text("FATAL")
        expect(box.locator("[data-field=reason]")).to_contain_text(
            f"port {holder.port} is in use by PID {holder.proc.pid}"
        )
        report["detail"] = "FATAL, holder named"
    finally:
        board.stop()


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
    wait_for(lambda: live.server("forking_clock")["children"] == 0, 15, "every child reaped")
    wait_for(lambda: dashboard.num_fds() <= fds_before + 2, 15, "the dashboard's descriptors back to normal")
    wait_for(
        lambda: dashboard.num_threads() <= threads_before + 2, 15, "the dashboard's threads back to normal"
    )
    report["cases"] = 2000
    report["detail"] = (
        f"{outcome['answered']} answered, {outcome['busy']} got `server busy`, 0 lost; live children peaked at "
        f"{peak[0]}; API p99 {p99:.0f} ms during the flood; no descriptor or thread leaked"
    )


@pytest.mark.reliability("faults", "100 Socket.IO viewers connecting and dropping at random for 30 s")
def test_viewers_churn_leaks_nothing(live, report):
    dashboard = psutil.Process(live.proc.pid)
    info = live.start_server("forking_clock", {"delay": 0, "reap": True})
    wait_for(lambda: dashboard.num_threads(), what="the dashboard to settle")
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


SLOW_SERVERS = [
    ("clock", []),
    ("forking_clock", ["--delay", "0"]),
    ("web", []),
    ("swap", []),
    ("secret_number", []),
    ("guess_word", []),
]


@pytest.mark.reliability("faults", "a client that connects and sends nothing (each of 6 servers)")
def test_slowloris_is_freed_by_timeouts(run_server, report):
    freed = []
    for module, args in SLOW_SERVERS:
        server = run_server(module, "--port", "0", *args, env={"FORKWATCH_IDLE_TIMEOUT": "1"})
        silent = server.connect()
        began = time.monotonic()
        silent.settimeout(15)
        recv_all(silent)  # returns when the server closes on us
        waited = time.monotonic() - began
        assert waited < 12, f"{module} kept a silent client for {waited:.1f} s"
        silent.close()
        freed.append(f"{module} {waited:.1f}s")
        server.stop()
    report["cases"] = len(SLOW_SERVERS)
    report["detail"] = "freed after: " + ", ".join(freed)


# --- bad input at scale ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_servers():
    """One of each line/HTTP server for the protocol fuzzers (module-wide, for speed)."""
    started = {}
    for module, args in [
        ("clock", ["--threading"]),
        ("swap", ["--timeout", "0.2"]),
        ("secret_number", ["--secret", "7"]),
        ("guess_word", ["--secret", "kernel"]),
        ("web", []),
    ]:
        started[module] = ServerProcess(module, "--port", "0", *args).wait_ready()
    yield started
    for server in started.values():
        server.stop()


def exchange(server, payload):
    with server.connect(timeout=10) as sock:
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            return recv_all(sock, 1 << 16)
        except (ConnectionResetError, BrokenPipeError):
            return b""


COUNTS = {}


@pytest.mark.reliability("bad input", "random bytes to every server protocol (hypothesis)")
@pytest.mark.parametrize("module", ["clock", "swap", "secret_number", "guess_word", "web"])
def test_random_bytes_never_break_a_server(fuzz_servers, module, report):
    server = fuzz_servers[module]
    seen = [0]

    @FUZZ
    @given(payload=st.binary(max_size=3000) | st.text(max_size=300).map(lambda t: t.encode("utf-8")))
    def fuzz(payload):
        seen[0] += 1
        answer = exchange(server, payload)
        if module in ("web", "guess_word") and answer:
            assert answer.startswith(b"HTTP/1.0 "), answer[:80]
        elif module == "secret_number" and answer:
            for line in answer.decode("utf-8", "replace").splitlines():
                assert line in (
                    "wrong",
                    "right",
                    "secret found",
                    "error: not a number",
                    "error: line too long",
                )
        assert server.proc.poll() is None

    fuzz()
    # Still serving a proper request afterwards.
    if module == "clock":
        assert len(exchange(server, QUESTION)) == 25
    elif module in ("web", "guess_word"):
        assert exchange(server, b"GET / HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 200")
    COUNTS[module] = seen[0]
    report["cases"] = seen[0]
    report["detail"] = f"{module} answered or closed cleanly every time and kept serving"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
names = st.sampled_from(["clock", "forking_clock", "fork_demo", "secret_number"]) | st.text(max_size=20)
pids = st.integers(min_value=-(2**40), max_value=2**40) | st.sampled_from([0, 1, os.getpid()])


@pytest.mark.reliability("bad input", "random JSON, names and PIDs to every API route (hypothesis)")
def test_every_api_route_answers_bad_input_with_a_4xx(app, report, stranger):
    manager = app.extensions["forkwatch"]
    client = app.test_client()
    routes = [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/")]
    tried = [0]

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def fuzz(data):
        rule = data.draw(st.sampled_from(routes))
        url = rule.rule.replace("<name>", data.draw(names).replace("/", "_") or "x")
        url = url.replace("<int:pid>", str(abs(data.draw(pids))))
        body = data.draw(
            json_values | st.fixed_dictionaries({"create_time": json_values, "signal": json_values})
        )
        method = "POST" if "POST" in rule.methods else "GET"
        tried[0] += 1
        response = client.open(url, method=method, json=body, headers=BEARER)
        assert response.status_code < 500, (url, body, response.get_data())
        if response.status_code >= 400:
            assert set(response.get_json()) == {"error"}
        assert stranger.poll() is None

    fuzz()
    # Whatever the fuzzer started or stopped, the dashboard still works: a fresh server
    # and child, then every PID that must never be signalled, the wrong create_time too.
    assert manager.settle(60)
    manager.stop_all()
    for server in manager.servers.values():
        assert server.wait_stopped(15)
    manager.start("forking_clock", {"delay": 120})
    wait_state(manager, "forking_clock", "RUNNING")
    sock = socket.create_connection(("127.0.0.1", manager.servers["forking_clock"].port))
    try:
        child_pid, child_time, _ = wait_for(
            lambda: manager.watcher.descendants("forking_clock"), what="a child"
        )[0]
        forbidden = [
            (1, 0.0),
            (os.getpid(), create_time_of(os.getpid())),
            (stranger.pid, create_time_of(stranger.pid)),
            (child_pid, child_time + 3.0),
            (manager.servers["forking_clock"].pid, manager.servers["forking_clock"].create_time),
        ]
        for pid, created in forbidden:
            response = client.post(
                f"/api/processes/{pid}/signal",
                json={"signal": "SIGKILL", "create_time": created},
                headers=BEARER,
            )
            assert response.status_code in (403, 404), (pid, response.get_json())
        assert stranger.poll() is None and is_alive(child_pid, child_time)
        assert manager.servers["forking_clock"].state.name == "RUNNING"
    finally:
        sock.close()
    report["cases"] = tried[0] + len(forbidden)
    report["detail"] = "no 5xx, one error shape, no wrong process ever signalled"


@pytest.mark.reliability("bad input", "random payloads to every Socket.IO event (hypothesis)")
def test_every_socket_event_survives_bad_payloads(app, report):
    manager = app.extensions["forkwatch"]
    manager.start("clock")
    wait_state(manager, "clock", "RUNNING")
    sio = app.extensions["forkwatch_socketio"].test_client(app, namespace="/live", auth={"token": TOKEN})
    events = ["start", "stop", "restart", "kill", "kill_children", "stdin"]
    tried = [0]

    @FUZZ
    @given(event=st.sampled_from(events), payload=json_values)
    def fuzz(event, payload):
        tried[0] += 1
        ack = sio.emit(event, payload, namespace="/live", callback=True)
        assert set(ack) == {"ok", "error", "result"}
        if not ack["ok"]:
            assert isinstance(ack["error"], str) and ack["error"]

    fuzz()
    assert sio.is_connected(namespace="/live")
    sio.disconnect(namespace="/live")
    report["cases"] = tried[0]
    report["detail"] = "every ack {ok, error, result}; no handler crashed"


# --- intruders ---------------------------------------------------------------------------------------


@pytest.mark.reliability("intruders", "tokens compared in constant time")
def test_tokens_are_compared_with_compare_digest(client, monkeypatch, report):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    client.post("/api/servers/clock/stop", headers={"Authorization": "Bearer wrong"})
    client.get("/?token=wrong")
    assert len(calls) >= 2 and all(b == TOKEN.encode() for _, b in calls)
    report["cases"] = len(calls)


def raw_post(url, headers):
    request = urllib.request.Request(
        url, data=b"{}", method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.mark.reliability("intruders", "cross-origin POST with the instructor's cookie but no CSRF token")
def test_cross_origin_post_without_csrf_is_refused(live, report):
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(f"{live.url}?token={TOKEN}", timeout=10) as response:
        assert response.status == 200
    cookie = next(
        iter(opener.handlers[-1].cookiejar if hasattr(opener.handlers[-1], "cookiejar") else []), None
    )
    jar = next(h.cookiejar for h in opener.handlers if isinstance(h, urllib.request.HTTPCookieProcessor))
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    status, body = raw_post(
        f"{live.url}api/servers/clock/start", {"Cookie": cookie, "Origin": "http://evil.example"}
    )
    assert status == 403 and "CSRF" in body["error"]
    assert live.server("clock")["state"] == "STOPPED"
    report["detail"] = "403"


@pytest.mark.reliability("intruders", "Socket.IO connection from a foreign Origin (WebSocket and polling)")
def test_socketio_from_a_foreign_origin_is_refused(live, report):
    import websocket

    endpoint = f"ws://127.0.0.1:{live.port}/socket.io/?EIO=4&transport=websocket"
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(endpoint, origin="http://evil.example", timeout=10)
    assert refused.value.status_code == 400
    own = websocket.create_connection(endpoint, origin=live.url.rstrip("/"), timeout=10)
    assert own.recv().startswith("0{")  # the Engine.IO open packet
    own.close()
    foreign = socketio.Client(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        foreign.connect(
            live.url, headers={"Origin": "http://evil.example"}, transports=["polling"], namespaces=["/live"]
        )
    report["cases"] = 3
    report["detail"] = "foreign origin refused (400) on both transports; same origin accepted"


@pytest.mark.reliability(
    "intruders", "`<script>` and `<img onerror>` in swap strings, numbers and words, shown in Chromium"
)
def test_script_in_game_input_is_shown_as_text(page, live, report):
    for name in ("swap", "secret_number", "guess_word"):
        live.start_server(name)
    page.goto(live.url)
    expect(page.locator("#conn")).to_have_text("live")
    attack = "<img src=x onerror=window.pwned=1>"
    swap = page.locator("#card-swap")
    swap.get_by_role("button", name="Two-pane demo (A/B)").click()
    swap.locator("[data-pane=A] input[name=text]").fill(attack)
    swap.locator("[data-pane=A]").get_by_role("button", name="Send").click()
    swap.locator("[data-pane=B] input[name=text]").fill("<script>window.pwned=2</script>")
    swap.locator("[data-pane=B]").get_by_role("button", name="Send").click()
    expect(swap.locator("[data-pane=B] .answer")).to_have_text(f"Alice sent you: {attack}")
    number = page.locator("#card-secret_number")
    number.locator("input[name=guess]").fill("<b>1</b>")
    number.get_by_role("button", name="Guess").click()
    expect(number.locator(".answer")).to_have_text("error: not a number")
    word = page.locator("#card-guess_word")
    word.locator("input[name=word]").fill(attack)
    word.get_by_role("button", name="Guess").click()
    expect(word.locator(".status-line")).to_contain_text("404")
    assert page.locator("img[src=x]").count() == 0
    assert page.evaluate("() => window.pwned === undefined")
    report["cases"] = 4


@pytest.mark.reliability("intruders", "binds 127.0.0.1 by default; warns and shows real addresses beyond it")
def test_binding_and_the_warning(tmp_path, report):
    outputs = {}
    for host in (None, "0.0.0.0"):
        argv = [sys.executable, "-m", "supervisor", "--port", "0"] + (["--host", host] if host else [])
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=child_env(XDG_CONFIG_HOME=str(tmp_path)),
            cwd=ROOT,
            start_new_session=True,
        )
        lines = []
        for raw in proc.stdout:
            lines.append(raw.decode().rstrip())
            if lines[-1].startswith("instructor:"):
                break
        listening = [
            c.laddr.ip for c in psutil.Process(proc.pid).net_connections() if c.status == psutil.CONN_LISTEN
        ]
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        proc.stdout.close()
        outputs[host] = (lines, listening)
    default_lines, default_listening = outputs[None]
    assert default_listening == ["127.0.0.1"]
    assert not any(line.startswith("warning") for line in default_lines)
    wide_lines, wide_listening = outputs["0.0.0.0"]
    assert wide_listening == ["0.0.0.0"]
    assert any(line.startswith("warning: forkwatch listens beyond this machine") for line in wide_lines)
    assert not any("0.0.0.0" in line for line in wide_lines if line.startswith(("viewers", "instructor")))
    report["cases"] = 2
