"""Viewer workers over a real Redis: a supervisor (`forkwatch --message-queue`) and
workers (`forkwatch viewer`), each a real process; Socket.IO clients on the workers; Redis
stopped and started again; a worker and the supervisor killed."""

import json
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import psutil
import pytest
import socketio
from wsproto.utilities import LocalProtocolError

from bench.hall_processes import RedisServer
from tests.hall_support import (
    Balancer,
    Hall,
    LiveViewer,
    NoRedirect,
    browser_login,
    close_all,
    worker_feed,
)
from tests.helpers import ROOT, TOKEN, ask, child_env, wait_for
from tests.web.floods import RawSocketIO


@pytest.fixture(scope="module")
def hall(tmp_path_factory, redis_server):
    hall = Hall(str(tmp_path_factory.mktemp("hall")), redis_server, channel="hall-web")
    yield hall
    hall.stop()


@pytest.fixture
def demo(hall):
    viewers = []
    yield hall, viewers
    close_all(viewers)
    hall.supervisor.stop_everything()


def send(url, method="POST", body=None, headers=None):
    """(status, JSON answer) of one request."""
    data = json.dumps(body or {}).encode() if method != "GET" else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def connected(viewers):
    for viewer in viewers:
        wait_for(lambda v=viewer: v.of("snapshot"), 10.0, "a snapshot from the worker")
    return viewers


def child_of(board, name, peer):
    """The supervisor's tree row of the child serving `peer`."""

    def found():
        return next((p for p in board.server_detail(name)["tree"] if p.get("peer") == peer), None)

    return wait_for(found, 10.0, f"the child serving {peer}")


def alive(proc):
    """Running, not a zombie (an orphan may wait as one for this test process to reap it)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_fork_reaches_viewers_on_both_workers(demo):
    hall, viewers = demo
    viewers += connected([LiveViewer(worker.url) for worker in hall.workers])
    for viewer in viewers:
        first = viewer.of("snapshot")[0]
        assert first["role"] == "viewer" and first["feed"] == {"ok": True, "text": None}
        assert {s["name"] for s in first["servers"]} >= {"clock", "forking_clock"}
    info = hall.supervisor.start_server("forking_clock", {"delay": 1, "reap": True})
    with socket.create_connection(("127.0.0.1", info["port"])) as sock:
        peer = f"127.0.0.1:{sock.getsockname()[1]}"
        assert ask(sock).endswith(b"\n")
    forks = [wait_for(lambda v=v: v.fork_of(peer), 10.0, "the fork at each worker's viewer") for v in viewers]
    assert forks[0]["pid"] == forks[1]["pid"]
    pid = forks[0]["pid"]
    wait_for(
        lambda: any(
            f"child {pid}" in e["text"] for e in hall.supervisor.api("GET", "/api/events")[1]["events"]
        ),
        10.0,
        "the supervisor's timeline to tell that child's story",
    )


def test_an_instructor_kill_through_worker_b_reaches_the_supervisor(demo):
    hall, viewers = demo
    b = hall.workers[1]
    info = hall.supervisor.start_server("forking_clock", {"delay": 60, "reap": True})
    socks = [socket.create_connection(("127.0.0.1", info["port"])) for _ in range(2)]
    try:
        rows = [child_of(hall.supervisor, "forking_clock", f"127.0.0.1:{s.getsockname()[1]}") for s in socks]
        cookie, csrf, page = browser_login(b)
        assert 'data-role="instructor"' in page and TOKEN not in page
        headers = {"Cookie": cookie, "X-CSRF-Token": csrf}
        # The page's way: a POST to worker B with the session cookie and its CSRF token.
        status, answer = send(
            f"{b.url}api/processes/{rows[0]['pid']}/signal",
            body={"signal": "SIGKILL", "create_time": rows[0]["create_time"]},
            headers=headers,
        )
        assert status == 200 and answer == {
            "pid": rows[0]["pid"],
            "signal": "SIGKILL",
            "server": "forking_clock",
        }
        socks[0].settimeout(10)
        assert socks[0].recv(10) == b""  # the child that served it is dead
        # Socket.IO's way: the `kill` event on worker B, over the same session's cookie.
        instructor = LiveViewer(b.url, cookie=cookie)
        viewers.append(instructor)
        assert connected([instructor])[0].of("snapshot")[0]["role"] == "instructor"
        ack = instructor.client.call(
            "kill",
            {"pid": rows[1]["pid"], "create_time": rows[1]["create_time"], "signal": "SIGKILL"},
            namespace="/live",
        )
        assert ack["ok"] is True and ack["result"]["pid"] == rows[1]["pid"], ack
        socks[1].settimeout(10)
        assert socks[1].recv(10) == b""
        events = hall.supervisor.api("GET", "/api/events")[1]["events"]
        for row in rows:
            assert any(e["text"] == f"SIGKILL sent to PID {row['pid']} of forking_clock" for e in events)
        # The same without its CSRF token is refused by the supervisor.
        status, answer = send(f"{b.url}api/servers/forking_clock/stop", headers={"Cookie": cookie})
        assert status == 403 and "CSRF" in answer["error"]
    finally:
        for sock in socks:
            sock.close()


def test_an_instructors_check_through_worker_b_runs_at_the_supervisor(demo):
    hall, viewers = demo
    b = hall.workers[1]
    assert hall.supervisor.api("GET", "/api/servers/clock/check")[0] == 404  # never checked
    cookie, _, _ = browser_login(b)
    instructor = connected([LiveViewer(b.url, cookie=cookie)])[0]
    viewers.append(instructor)
    ack = instructor.client.call("check", {"name": "clock"}, namespace="/live")
    assert ack["ok"] is True, ack
    status, summary = hall.supervisor.api("GET", "/api/servers/clock/check")
    assert status == 200 and summary["checks"], summary
    ack = instructor.client.call("check", {"name": "no_such_server"}, namespace="/live")
    assert ack["ok"] is False and "no_such_server" in ack["error"]


def test_a_viewer_through_a_worker_stays_a_viewer(demo):
    hall, viewers = demo
    b = hall.workers[1]
    cookie, csrf, page = browser_login(b, token=None)
    assert 'data-role="viewer"' in page
    status, answer = send(f"{b.url}api/servers/clock/start", headers={"Cookie": cookie, "X-CSRF-Token": csrf})
    assert status == 401 and answer == {"error": "this needs the instructor's token"}
    viewer = LiveViewer(b.url, cookie=cookie)
    viewers.append(viewer)
    assert connected([viewer])[0].of("snapshot")[0]["role"] == "viewer"
    ack = viewer.client.call("start", {"name": "clock"}, namespace="/live")
    assert ack == {"ok": False, "error": "this needs the instructor's token", "result": None}
    status, answer = send(f"{b.url}api/servers/clock/start", headers={"Authorization": "Bearer wrong"})
    assert status == 403 and answer == {"error": "the token is wrong"}
    with pytest.raises(socketio.exceptions.ConnectionError):
        LiveViewer(b.url, auth={"token": "wrong"})
    by_token = LiveViewer(b.url, auth={"token": TOKEN})
    viewers.append(by_token)
    assert connected([by_token])[0].of("snapshot")[0]["role"] == "instructor"
    assert hall.supervisor.server_detail("clock")["state"] == "STOPPED"


def test_the_stage_and_the_lesson_reach_a_workers_pages_through_the_queue(demo):
    hall, viewers = demo
    a, b = hall.workers
    viewer = connected([LiveViewer(a.url)])[0]
    viewers.append(viewer)
    first = viewer.of("snapshot")[0]
    assert first["stage"]["kind"] is None and first["lesson"]["step"] == 0
    cookie, csrf, _ = browser_login(b)  # the instructor's page is on the other worker
    instructor = {"Cookie": cookie, "X-CSRF-Token": csrf}
    try:
        status, stage = send(
            f"{b.url}api/stage", body={"kind": "server", "name": "clock"}, headers=instructor
        )
        assert status == 200 and stage["name"] == "clock"
        seen = wait_for(lambda: viewer.of("stage"), 10.0, "the stage at worker A's viewer")
        assert (seen[0]["kind"], seen[0]["name"], seen[0]["t"]) == ("server", "clock", stage["t"])
        status, _ = send(f"{b.url}api/lesson/go", body={"step": 0}, headers=instructor)
        assert status == 202
        lesson = wait_for(lambda: viewer.of("lesson"), 10.0, "the lesson at worker A's viewer")[0]
        assert (lesson["step"], lesson["of"]) == (0, first["lesson"]["of"])
        page = urllib.request.urlopen(a.url, timeout=10).read().decode()  # a page opened now
        snapshot = json.loads(
            page.split('<script id="snapshot" type="application/json">')[1].split("</script>")[0]
        )
        assert (snapshot["stage"]["kind"], snapshot["stage"]["name"]) == ("server", "clock")
        assert '<script id="lesson-data"' in page and '<script id="comparisons-data"' in page
    finally:
        send(f"{b.url}api/stage", body={"kind": None}, headers=instructor)


def test_a_recording_on_stage_is_framed_through_a_worker_as_here(demo):
    hall, _ = demo
    hall.supervisor.start_server("clock")  # a demo, so a recording
    recordings = wait_for(
        lambda: [
            r
            for r in hall.supervisor.api("GET", "/api/recordings")[1]["recordings"]
            if "clock" in r["servers"]
        ],
        10.0,
        "a recording of the clock",
    )
    for base in (hall.supervisor.url, hall.workers[0].url):  # the clock's card shows its mode
        with urllib.request.urlopen(f"{base}recordings/{recordings[0]['id']}?on_stage=1", timeout=10) as page:
            assert page.headers["X-Frame-Options"] == "SAMEORIGIN"
            assert "frame-ancestors 'self'" in page.headers["Content-Security-Policy"]
            assert "serve_forever()" in page.read().decode()
    with urllib.request.urlopen(hall.workers[0].url, timeout=10) as page:
        assert page.headers["X-Frame-Options"] == "DENY"  # the page itself is framed by nobody


def test_leaving_instructor_mode_through_a_worker_ends_the_sockets_it_had(demo):
    hall, viewers = demo
    b = hall.workers[1]
    cookie, csrf, _ = browser_login(b)
    instructor = connected([LiveViewer(b.url, cookie=cookie)])[0]
    viewers.append(instructor)
    assert instructor.of("snapshot")[0]["role"] == "instructor"
    logout = urllib.request.Request(
        f"{b.url}logout",
        data=f"csrf={csrf}".encode(),
        headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert urllib.request.build_opener(NoRedirect).open(logout, timeout=10).status == 303
    ack = instructor.client.call("start", {"name": "clock"}, namespace="/live")
    assert ack == {"ok": False, "error": "this needs the instructor's token", "result": None}
    assert hall.supervisor.server_detail("clock")["state"] == "STOPPED"
    page = urllib.request.urlopen(urllib.request.Request(b.url, headers={"Cookie": cookie}), timeout=10)
    assert "Your instructor session has ended" in page.read().decode()


def test_a_workers_live_keeps_the_rooms_limits(demo):
    hall, viewers = demo
    worker = hall.workers[0]
    viewer = connected([LiveViewer(worker.url)])[0]
    viewers.append(viewer)
    before = worker_room(worker)
    flooder = RawSocketIO(worker.port, source="127.0.0.2")
    reader = threading.Thread(target=lambda: [None for _ in iter(flooder.read_some, False)], daemon=True)
    reader.start()
    try:
        flooder.send('42/live,1["no_such_event"]')
        refusal = wait_for(
            lambda: next((t for t in flooder.received if t.startswith("43/live,1")), None),
            10.0,
            "the refusal",
        )
        assert "/live has no event 'no_such_event'" in refusal
        for _ in range(1000):  # flat out and bounded: far past a session's 20 events a second
            try:
                flooder.send('42/live,["no_such_event"]')
            except (OSError, LocalProtocolError):  # already cut off
                break
        wait_for(lambda: flooder.closed, 10.0, "the worker to cut the flooding socket off")
    finally:
        flooder.close()
        reader.join(10)
    after = worker_room(worker)
    assert after.get("cut_off_flooding", 0) == before.get("cut_off_flooding", 0) + 1
    dropped = after.get("messages_dropped_session_limit", 0) - before.get("messages_dropped_session_limit", 0)
    assert dropped > 400, after
    hall.supervisor.start_server("clock")  # the worker's other browser is live all along
    wait_for(
        lambda: [s for s in viewer.of("server") if s["name"] == "clock" and s["state"] == "RUNNING"],
        10.0,
        "the clock's start on the other browser of that worker",
    )


def worker_room(worker):
    with urllib.request.urlopen(worker.url + "healthz", timeout=5) as answer:
        return json.loads(answer.read())["room"]


def test_a_worker_takes_websocket_only_and_the_supervisor_still_polls(hall):
    handshake = "socket.io/?EIO=4&transport=polling"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(hall.workers[0].url + handshake, timeout=10)
    assert refused.value.code == 400
    refused.value.close()
    with urllib.request.urlopen(hall.supervisor.url + handshake, timeout=10) as answer:
        assert answer.status == 200


def test_a_killed_workers_clients_reconnect_to_another_through_the_same_address(demo):
    hall, viewers = demo
    first, second = hall.add_worker(), hall.add_worker()
    balancer = Balancer([first.port, second.port])
    try:
        viewer = LiveViewer(balancer.url, reconnection=True)
        viewers.append(viewer)
        connected([viewer])
        assert set(balancer.routed) == {first.port}
        last = hall.supervisor.api("GET", "/api/events")[1]["last"]
        hall.workers.remove(first)
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
        wait_for(lambda: len(viewer.of("snapshot")) >= 2, 20.0, "a snapshot from the other worker")
        assert balancer.routed[-1] == second.port
        # Nothing in the supervisor noticed: no event, and it serves on.
        assert hall.supervisor.api("GET", f"/api/events?after={last}")[1]["events"] == []
        info = hall.supervisor.start_server("forking_clock", {"delay": 60, "reap": True})
        with socket.create_connection(("127.0.0.1", info["port"])) as sock:
            peer = f"127.0.0.1:{sock.getsockname()[1]}"
            wait_for(lambda: viewer.fork_of(peer), 10.0, "a fork through the other worker")
    finally:
        balancer.close()
        hall.workers.remove(second)
        second.stop()


def test_redis_stopped_and_started_again_mid_demo_loses_no_event(tmp_path):
    redis = RedisServer(str(tmp_path)).start()
    hall = None
    viewers = []
    try:
        hall = Hall(str(tmp_path), redis, channel="outage", workers=1)
        board = hall.supervisor
        viewers += connected([LiveViewer(hall.workers[0].url), LiveViewer(board.url)])
        on_worker, on_supervisor = viewers
        board.start_server("fork_demo")
        wait_for(
            lambda: any("fork_demo forked child" in e["text"] for e in on_worker.of("event")), 10.0, "a fork"
        )
        redis.stop()
        paused = wait_for(lambda: on_worker.of("feed"), 10.0, "the worker's page told of the pause")[0]
        assert paused == {
            "ok": False,
            "text": "live updates paused: message queue unreachable",
            "t": paused["t"],
        }
        wait_for(
            lambda: [f for f in on_supervisor.of("feed") if "message queue unreachable" in f["text"]],
            10.0,
            "the supervisor's own page told too",
        )
        page = urllib.request.urlopen(hall.workers[0].url, timeout=10).read().decode()
        assert "live updates paused: message queue unreachable" in page  # also a page opened now
        before = board.api("GET", "/api/events")[1]["last"]
        for _ in range(2):  # the demo goes on meanwhile: two more forks
            assert board.api("POST", "/api/servers/fork_demo/stdin", {"line": ""})[0] == 200
        missed = wait_for(
            lambda: [
                e
                for e in board.api("GET", f"/api/events?after={before}")[1]["events"]
                if "forked" in e["text"]
            ],
            10.0,
            "the forks made during the outage in the supervisor's timeline",
        )
        assert not {e["id"] for e in missed} & on_worker.timeline_ids()
        assert {e["id"] for e in missed} <= on_supervisor.timeline_ids()  # its own page stayed live
        snapshots = len(on_worker.of("snapshot"))
        redis.start()
        wait_for(
            lambda: [s for s in on_worker.of("snapshot")[snapshots:] if s["feed"]["ok"]],
            30.0,
            "a fresh snapshot once Redis is back",
        )
        assert worker_feed(hall.workers[0])["ok"]
        everything = {e["id"] for e in board.api("GET", "/api/events")[1]["events"]}
        assert everything - on_worker.timeline_ids() == set()
        # …and live again: the next fork arrives as a live event.
        assert board.api("POST", "/api/servers/fork_demo/stdin", {"line": ""})[0] == 200
        latest = wait_for(
            lambda: [e for e in board.api("GET", "/api/events")[1]["events"] if e["id"] not in everything],
            10.0,
            "a new event",
        )
        wait_for(
            lambda: latest[0]["id"] in {e["id"] for e in on_worker.of("event")}, 10.0, "it live at the worker"
        )
    finally:
        close_all(viewers)
        if hall is not None:
            hall.supervisor.stop_everything()
            hall.stop()
        redis.stop()


def test_the_supervisor_killed_its_servers_die_and_workers_say_so(tmp_path, redis_server):
    hall = Hall(str(tmp_path), redis_server, channel="gone", workers=1)
    worker = hall.workers[0]
    viewer = LiveViewer(worker.url)
    try:
        connected([viewer])
        info = hall.supervisor.start_server("forking_clock", {"delay": 60, "reap": True})
        with socket.create_connection(("127.0.0.1", info["port"])) as sock:
            row = child_of(hall.supervisor, "forking_clock", f"127.0.0.1:{sock.getsockname()[1]}")
            started = [psutil.Process(pid) for pid in (info["pid"], row["pid"])]
            hall.supervisor.proc.kill()
            wait_for(lambda: not [p for p in started if alive(p)], 10.0, "the watchdog to kill every server")
        gone = wait_for(
            lambda: [f for f in viewer.of("feed") if "supervisor gone" in f["text"]], 15.0, "the news"
        )
        assert gone[0]["ok"] is False
        assert worker_feed(worker)["text"] == gone[0]["text"]
        page = urllib.request.urlopen(worker.url, timeout=10).read().decode()
        assert "supervisor gone" in page  # the page still opens, from the last snapshot known
    finally:
        viewer.close()
        hall.stop()


def test_a_worker_without_a_message_queue_says_what_it_needs(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "supervisor", "viewer", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env=child_env(XDG_CONFIG_HOME=str(tmp_path)),
    )
    assert result.returncode == 2
    assert "a viewer worker needs the message queue: --message-queue redis://" in result.stderr


def test_without_a_message_queue_one_process_and_no_feed(app, client):
    manager = app.extensions["forkwatch_socketio"].server.manager
    assert type(manager) is socketio.Manager  # no Redis anywhere
    assert "feed" not in client.get("/api/snapshot").get_json()
