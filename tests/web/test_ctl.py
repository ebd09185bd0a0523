"""`forkwatch ctl` as a real subprocess against a live dashboard: every command, its output
for people and for scripts, and the exit codes (0 ok, 1 refused, 2 unreachable)."""

import contextlib
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from tests.core.check_support import SOLUTIONS
from tests.helpers import ROOT, TOKEN, Dashboard, child_env, wait_for, wait_state

CTL = [sys.executable, "-m", "supervisor", "ctl"]
QUIET_ENV = ("FORKWATCH_TOKEN", "FORKWATCH_URL", "FORKWATCH_CONFIG", "FORKWATCH_HOST", "FORKWATCH_PORT")


def ctl_env(home, url=None, token=TOKEN, **extra):
    """ctl's environment: its own empty config folder, the dashboard's URL, the token."""
    env = child_env(XDG_CONFIG_HOME=str(home), **extra)
    for name in (*QUIET_ENV, "FORKWATCH_STATE_DIR"):
        env.pop(name, None)
    if url:
        env["FORKWATCH_URL"] = url
    if token:
        env["FORKWATCH_TOKEN"] = token
    return env


def run_ctl(env, *args):
    """`python -m supervisor ctl ARGS` to its end; (exit code, stdout, stderr)."""
    done = subprocess.run(CTL + list(args), capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def ctl(live, tmp_path):
    """ctl against the live dashboard, as the instructor unless told otherwise."""

    def run(*args, token=TOKEN):
        return run_ctl(ctl_env(tmp_path / "home", live.url, token), *args)

    return run


class Follower:
    """`ctl … -f` as a subprocess, its stdout and stderr lines collected as they come."""

    def __init__(self, env, *args):
        self.proc = subprocess.Popen(
            CTL + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT
        )
        self.out, self.err = [], []
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(pipe, lines):
        for line in pipe:
            lines.append(line.rstrip("\n"))

    def wait_ready(self):
        wait_for(
            lambda: any("(Ctrl-C to stop)" in line for line in self.err) or self.proc.poll() is not None,
            15.0,
            "the follower to be connected",
        )
        assert self.proc.poll() is None, f"the follower exited {self.proc.returncode}: {self.err}"

    def wait_out(self, pattern, timeout=15.0):
        regex = re.compile(pattern)
        return wait_for(
            lambda: next((line for line in list(self.out) if regex.search(line)), None),
            timeout,
            f"a line matching {pattern!r} (stderr: {self.err})",
        )

    def interrupt(self, within=2.0):
        """Ctrl-C; the exit code, which must come within `within` seconds."""
        self.proc.send_signal(signal.SIGINT)
        return self.wait(within)

    def wait(self, timeout):
        code = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(5.0)
        return code

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait(10.0)
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def follow(live, tmp_path):
    started = []

    def start(*args, url=None):
        follower = Follower(ctl_env(tmp_path / "home", url or live.url), *args)
        started.append(follower)
        follower.wait_ready()
        return follower

    yield start
    for follower in started:
        follower.close()


def server_info(live, name):
    return live.api("GET", f"/api/servers/{name}")[1]


def state_of(live, name):
    return server_info(live, name)["state"]


# --- status, start, stop, restart -------------------------------------------------------------


def test_status_is_a_table_for_people_and_json_for_scripts(live, ctl):
    clock = live.start_server("clock")
    code, out, err = ctl("status")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "STATE", "PID", "PORT", "CHILDREN", "UPTIME", "EXIT", "REASON"]
    row = next(line for line in lines if line.startswith("clock "))
    assert re.match(rf"clock\s+RUNNING\s+{clock['pid']}\s+{clock['port']}\s+0\s+\d+:\d\d:\d\d\s+-$", row), row
    assert re.match(
        r"web\s+STOPPED\s+-\s+\S+\s+0\s+-", next(line for line in lines if line.startswith("web "))
    )

    code, out, err = ctl("status", "--json")  # --json after the command works too
    assert code == 0, err
    servers = {server["name"]: server for server in json.loads(out)}
    assert servers["clock"]["state"] == "RUNNING" and servers["clock"]["pid"] == clock["pid"]
    assert servers["web"]["state"] == "STOPPED"

    code, out, err = ctl("status", "clock")
    assert code == 0, err
    assert re.search(rf"^{clock['pid']}\s+\d+\s+\w+\s+\d+:\d\d:\d\d\s+-\s+\S.*$", out, re.M), out
    wait_for(
        lambda: "polling its listening socket (serve_forever, every 0.5 s)" in ctl("status", "clock")[1],
        5,
        "the DOING column to say the clock server polls",
    )
    code, out, err = ctl("--json", "status", "clock")
    assert code == 0 and [proc["pid"] for proc in json.loads(out)["tree"]] == [clock["pid"]]


def test_start_restart_stop_with_options(live, ctl):
    code, out, err = ctl("start", "forking_clock", "--opt", "delay=2", "--opt", "reap", "--wait")
    assert code == 0, err
    first = server_info(live, "forking_clock")
    assert out.strip() == f"forking_clock: RUNNING as PID {first['pid']}"
    assert first["options"] == {"delay": 2.0, "busy": False, "reap": True, "max_children": 100}

    code, out, err = ctl("--json", "restart", "forking_clock", "--opt", "max-children=5", "--wait")
    assert code == 0, err
    second = json.loads(out)
    assert second["state"] == "RUNNING" and second["pid"] != first["pid"]
    assert server_info(live, "forking_clock")["options"] == {
        "delay": 10.0,
        "busy": False,
        "reap": False,
        "max_children": 5,
    }

    code, out, err = ctl("stop", "forking_clock", "--wait")
    assert code == 0, err
    assert out.strip() == "forking_clock: STOPPED" and state_of(live, "forking_clock") == "STOPPED"


def test_a_start_the_dashboard_refuses_exits_1_with_its_sentence(live, ctl):
    code, out, err = ctl("start", "forking_clock", "--opt", "nope=1")
    assert (code, out) == (1, "")
    assert (
        err.strip()
        == "forkwatch ctl: forking_clock has no option 'nope' (its options: delay, busy, reap, max_children)"
    )
    code, _, err = ctl("--json", "start", "forking_clock", "--opt", "delay=500")
    assert code == 1
    assert json.loads(err) == {"error": "option delay must be between 0 and 120", "status": 400}
    code, _, err = ctl("stop", "forking_clock")
    assert code == 1 and "forking_clock is not running" in err
    code, _, err = ctl("start", "no_such_server")
    assert code == 1 and "there is no server named 'no_such_server'" in err
    assert state_of(live, "forking_clock") == "STOPPED"


# --- children, signals, clients -----------------------------------------------------------------


def connect_clients(port, count):
    return [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]


def children_of(live, name):
    server = server_info(live, name)
    return sorted(p["pid"] for p in server["tree"] if p["ppid"] == server["pid"] and p["status"] != "zombie")


def test_signal_and_kill_children_reach_real_forked_children(live, ctl):
    server = live.start_server("forking_clock", {"delay": 60, "reap": True})
    with contextlib.ExitStack() as stack:
        for sock in connect_clients(server["port"], 3):
            stack.enter_context(sock)
        children = wait_for(
            lambda: len(children_of(live, "forking_clock")) == 3 and children_of(live, "forking_clock"),
            what="three forked children",
        )

        code, out, err = ctl("signal", str(children[0]), "term")
        assert code == 0, err
        assert out.strip() == f"SIGTERM sent to PID {children[0]} of forking_clock"
        wait_for(lambda: children_of(live, "forking_clock") == children[1:], what="the signalled child gone")

        code, out, err = ctl("--json", "kill-children", "forking_clock")
        assert code == 0, err
        assert json.loads(out) == {"killed": children[1:], "skipped": []}
        wait_for(lambda: children_of(live, "forking_clock") == [], what="every child gone")

        code, out, err = ctl("kill-children", "forking_clock", "--signal", "15")
        assert (code, out.strip()) == (0, "signalled 0 children"), err


def test_signal_refuses_a_pid_outside_every_managed_tree(live, ctl, stranger):
    server = live.start_server("clock")
    code, out, err = ctl("signal", str(stranger.pid), "KILL")
    assert (code, out) == (1, "")
    assert err.strip() == (
        f"forkwatch ctl: PID {stranger.pid} is in no managed server's process tree; forkwatch signals only those"
    )
    assert stranger.poll() is None
    code, _, err = ctl("signal", str(server["pid"]), "TERM")  # in a tree, but the server itself
    assert code == 1 and f"PID {server['pid']} is the clock server itself; use Stop" in err
    code, _, err = ctl("signal", str(stranger.pid), "77")
    assert code == 1 and "there is no signal number 77" in err
    assert stranger.poll() is None and state_of(live, "clock") == "RUNNING"


def test_clients_start_looping_fork_clients(live, ctl):
    live.start_server("forking_clock", {"delay": 0.2, "reap": True})
    after = live.api("GET", "/api/events")[1]["last"]
    code, out, err = ctl("clients", "forking_clock", "2")
    assert code == 0, err
    assert re.fullmatch(r"starting 2 fork clients against forking_clock \(batch \d+\)", out.strip())

    def forks():
        events = live.api("GET", f"/api/events?after={after}")[1]["events"]
        return [e for e in events if e["server"] == "forking_clock" and e["kind"] == "fork"]

    wait_for(lambda: len(forks()) >= 2, 20.0, "two forks for the clients")
    code, _, err = ctl("clients", "clock", "2")
    assert code == 1 and "fork clients talk to the forking clock server, not clock" in err
    code, _, err = ctl("clients", "forking_clock", "0")
    assert code == 1 and "give a whole number from 1 to 1000" in err


def test_stop_all_stops_every_server(live, ctl):
    live.start_server("clock")
    live.start_server("web")
    code, out, err = ctl("stop-all", "--wait")
    assert code == 0, err
    assert out.strip() == "stopping: clock, web"
    assert {s["name"]: s["state"] for s in live.api("GET", "/api/servers")[1]}["clock"] == "STOPPED"
    assert state_of(live, "web") == "STOPPED"
    code, out, err = ctl("--json", "stop-all")
    assert code == 0 and json.loads(out)["stopping"] == []


def this_run(live, server, lines=None):
    """(PIDs appended to active_processes, console lines) of this run of a server: from its
    address line on (the session's dashboard keeps the console of earlier runs)."""
    if lines is None:
        lines = live.api("GET", f"/api/servers/{server['name']}/output?tail=200")[1]["lines"]
    start = max(i for i, line in enumerate(lines) if line.endswith(f":{server['port']}"))
    lines = lines[start:]
    return [int(line.split()[-1]) for line in lines if line.startswith("appending PID ")], lines


def test_interrupt_is_the_lectures_ctrl_c_and_the_server_shuts_down_its_own_way(live, ctl):
    server = live.start_server("forking_clock", {"delay": 60})
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(sock) for sock in connect_clients(server["port"], 2)]
        wait_for(lambda: len(children_of(live, "forking_clock")) == 2, what="two forked children")
        wait_for(lambda: len(this_run(live, server)[0]) == 2, what="both in active_processes")
        code, out, err = ctl("interrupt", "forking_clock")
        assert code == 0, err
        assert out.strip() == "forking_clock: SIGINT sent (the lecture's Ctrl-C)"
        info = wait_state(live, "forking_clock", "EXITED")
        assert (info["exit_code"], info["exit_class"]) == (0, "finished")
        for sock in socks:
            sock.settimeout(10)
            assert sock.recv(10) == b""  # each child was killed by the server itself
    code, out, err = ctl("tail", "forking_clock", "-n", "200")
    assert code == 0, err
    appended, lines = this_run(live, server, out.splitlines())
    shutdown = lines[lines.index("ctrl c pressed, closing server") :]
    assert [line for line in shutdown if not line.startswith("client is blocked")] == [
        "ctrl c pressed, closing server",
        f"active processes : {appended}",
        *(f"-> killing process {pid}" for pid in appended),
    ]
    code, _, err = ctl("interrupt", "forking_clock")
    assert code == 1 and "forking_clock is not running (exited)" in err
    code, _, err = ctl("interrupt", "no_such_server")
    assert code == 1 and "there is no server named 'no_such_server'" in err


# --- output and the timeline ------------------------------------------------------------------


def test_tail_and_events_print_the_latest_and_exit(live, ctl):
    clock = live.start_server("clock")
    code, out, err = ctl("tail", "clock")
    assert code == 0, err
    assert f"listening on tcp://127.0.0.1:{clock['port']}" in out.splitlines()
    code, out, _ = ctl("tail", "clock", "-n", "1")
    assert out.splitlines() == ["press ctrl c to stop server"]
    code, out, _ = ctl("--json", "tail", "clock", "-n", "2")
    assert json.loads(out) == {"lines": live.api("GET", "/api/servers/clock/output?tail=2")[1]["lines"]}

    code, out, err = ctl("events", "-n", "2")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(rf"\d\d:\d\d:\d\d  clock  ready  clock is ready on port {clock['port']}", lines[-1])
    code, out, _ = ctl("--json", "events", "-n", "2")
    answer = json.loads(out)
    assert [e["kind"] for e in answer["events"]] == ["start", "ready"]
    assert answer["last"] == answer["events"][-1]["id"]
    code, _, err = ctl("tail", "no_such_server", "-f")
    assert code == 1 and "there is no server named 'no_such_server'" in err


def test_tail_follows_a_server_started_after_it_and_ctrl_c_exits_0_at_once(live, follow):
    follower = follow("tail", "web", "-f")
    web = live.start_server("web")
    address = f"listening on tcp://127.0.0.1:{web['port']}"
    follower.wait_out(rf"^{re.escape(address)}$")  # a new port: a live line, not the backlog's
    wait_for(
        lambda: "welcome to our web server" in follower.out[follower.out.index(address) :], what="the welcome"
    )
    assert follower.interrupt(within=2.0) == 0


def test_events_follow_prints_each_event_once_in_order(live, follow):
    follower = follow("--json", "events", "-f", "-n", "1")
    clock = live.start_server("clock")
    follower.wait_out(rf'"text": "clock is ready on port {clock["port"]}"')
    live.api("POST", "/api/servers/clock/stop")
    follower.wait_out(r'"text": "clock stopped')
    assert follower.interrupt(within=2.0) == 0
    ids = [json.loads(line)["id"] for line in follower.out]
    assert ids == list(range(ids[0], ids[0] + len(ids))), ids


class Relay:
    """A loopback TCP relay to the dashboard that a test can cut (every connection closed,
    new ones refused) and open again on the same port."""

    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.sockets = []
        self.listener = None
        self.open()

    def open(self):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(16)
        self.listener.settimeout(0.05)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener):
        while listener.fileno() != -1:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            upstream = socket.create_connection(self.target)
            self.sockets += [conn, upstream]
            for src, dst in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_RDWR)

    def cut(self):
        self.listener.close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.sockets = []


def test_events_follow_fills_a_lost_connection_and_exits_2_when_it_never_returns(live, follow):
    relay = Relay(live.port)
    try:
        follower = follow("--json", "events", "-f", "-n", "1", url=f"http://127.0.0.1:{relay.port}")
        relay.cut()
        wait_for(lambda: any("reconnecting" in line for line in follower.err), 10.0, "the loss noticed")
        clock = live.start_server("clock")  # events the follower misses while cut off
        relay.open()
        follower.wait_out(rf'"text": "clock is ready on port {clock["port"]}"')
        ids = [json.loads(line)["id"] for line in follower.out]
        assert ids == list(range(ids[0], ids[0] + len(ids))), ids
        relay.cut()
        assert follower.wait(20.0) == 2
        assert "is gone and did not come back" in follower.err[-1]
    finally:
        relay.cut()


# --- reaching the dashboard, and who may do what -------------------------------------------------


def test_unreachable_dashboard_exits_2(tmp_path):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)  # accepts connections (in the kernel), never answers
    env = ctl_env(tmp_path)
    with closed, silent:
        for args in (["status"], ["events", "-f"], ["start", "clock"]):
            url = f"http://127.0.0.1:{closed.getsockname()[1]}"
            code, _, err = run_ctl(env, "--url", url, *args)
            assert code == 2, (args, err)
            assert url in err and ("connection refused" in err or "Connection error" in err), err
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        code, _, err = run_ctl(env, "--url", url, "--timeout", "0.5", "status")
        assert code == 2 and "no answer within 0.5 s" in err
        assert time.monotonic() - started < 10


class NotTheApi(http.server.BaseHTTPRequestHandler):
    """Answers as a broken proxy (502 with a sentence) or as some other web server (HTML)."""

    def do_GET(self):
        if self.path == "/api/servers":
            status, kind, body = 200, "text/html", b"<h1>hello</h1>"
        else:
            status, kind, body = 502, "application/json", b'{"error": "the upstream is down"}'
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_5xx_or_an_answer_that_is_not_the_api_exits_2(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotTheApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        env = ctl_env(tmp_path, url)
        code, _, err = run_ctl(env, "status")
        assert code == 2 and "is not JSON; is that a forkwatch dashboard?" in err
        code, _, err = run_ctl(env, "status", "clock")
        assert (code, err.strip()) == (2, "forkwatch ctl: the upstream is down")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_wrong_token_is_refused(live, ctl):
    code, _, err = ctl("start", "clock", token="not-the-token")
    assert (code, err.strip()) == (1, "forkwatch ctl: the token is wrong")
    code, _, err = ctl("--json", "stop-all", token="not-the-token")
    assert code == 1 and json.loads(err) == {"error": "the token is wrong", "status": 403}
    assert state_of(live, "clock") == "STOPPED"


def test_a_viewer_watches_but_may_not_start(live, ctl):
    code, out, err = ctl("status", token=None)
    assert code == 0 and out.startswith("NAME"), err
    code, out, err = ctl("start", "clock", token=None)
    assert (code, out, err.strip()) == (1, "", "forkwatch ctl: this needs the instructor's token")
    assert state_of(live, "clock") == "STOPPED"


def test_the_token_comes_from_the_config_folder_or_a_token_file(live, ctl, tmp_path):
    folder = tmp_path / "home" / "forkwatch"
    folder.mkdir(parents=True)
    (folder / "token").write_text(TOKEN + "\n")
    code, _, err = ctl("start", "clock", "--wait", token=None)
    assert code == 0, err
    (folder / "token").write_text("stale\n")
    token_file = tmp_path / "instructor-token"
    token_file.write_text(TOKEN)
    code, out, err = ctl("--token-file", str(token_file), "stop", "clock", "--wait", token=None)
    assert (code, out.strip()) == (0, "clock: STOPPED"), err
    code, _, err = ctl("--token-file", str(tmp_path / "missing"), "start", "clock", token=None)
    assert code == 1 and "does not exist or is empty" in err
    code, _, err = ctl("start", "clock", token=None)  # the stale token in the folder
    assert code == 1 and "the token is wrong" in err


def test_the_address_comes_from_the_config_file(live, tmp_path):
    config = tmp_path / "forkwatch.toml"
    config.write_text(f'host = "127.0.0.1"\nport = {live.port}\n')
    env = ctl_env(tmp_path / "home")
    code, out, err = run_ctl(env, "--config", str(config), "status")
    assert code == 0 and out.startswith("NAME"), err
    config.write_text("port = 0\n")
    env["FORKWATCH_CONFIG"] = str(config)
    code, _, err = run_ctl(env, "status")
    assert code == 1 and "the config's port is 0" in err


def test_usage_mistakes_exit_1(tmp_path):
    env = ctl_env(tmp_path, "http://127.0.0.1:9")
    mistakes = (
        [],
        ["start"],
        ["clients", "forking_clock", "many"],
        ["start", "clock", "--opt", "=3"],
        ["tail", "clock", "-n", "0"],
        ["--timeout", "0", "status"],
        ["signal", "123", "\u017figkill"],  # the long s upper-cases to S: names are ASCII only
    )
    for args in mistakes:
        code, _, err = run_ctl(env, *args)
        assert code == 1 and err.strip(), (args, err)
    code, out, _ = run_ctl(env, "--help")
    assert code == 0 and "exit codes: 0 ok, 1 refused" in out.replace("\n", " ")


# --- the seam between a backlog and the live lines --------------------------------------------


def test_live_lines_that_repeat_the_backlog_end_are_dropped_once():
    from supervisor.ctl.follow import unseen

    live = [("stdout", "b"), ("stdout", "c"), ("stderr", "d")]
    assert unseen(["a", "b", "c"], live) == [("stderr", "d")]
    assert unseen(["a", "b"], live) == live[1:]
    assert unseen(["b", "c", "x"], live) == live  # the backlog ends elsewhere: nothing repeats
    assert unseen([], live) == live
    assert unseen(["a", "b", "c"], live[:2]) == []
    assert unseen(["x", "x"], [("stdout", "x"), ("stdout", "x"), ("stdout", "y")]) == [("stdout", "y")]


# --- check ---------------------------------------------------------------------------------------


def test_check_waits_for_the_results_and_its_exit_code_says_pass_or_fail(tmp_path):
    """A student's secret-number server that keeps its state per process fails; the lecture's
    clock passes; a server with no exercise is refused with the dashboard's sentence."""
    wrong = os.path.join(SOLUTIONS, "secret_per_process.py")
    os.mkdir(tmp_path / "board")
    board = Dashboard(
        str(tmp_path / "board"), TOKEN, args=["--serve", wrong, "--as", "secret_number", "--name", "secret"]
    )
    board.start()
    try:
        env = ctl_env(tmp_path / "home", board.url)
        code, out, err = run_ctl(env, "check", "secret", "--wait", "120")
        assert code == 1, err
        assert re.search(r"^FAIL  secret_number\.\S+", out, re.M), out
        assert re.search(
            r"^secret as secret_number: \d+ of \d+ checks passed, [1-9]\d* failed \(failed\)$", out, re.M
        )

        code, out, err = run_ctl(env, "--json", "check", "clock", "--wait", "120")
        assert code == 0, (out, err)
        summary = json.loads(out)
        assert (
            summary["state"] == "passed"
            and summary["failed"] == 0
            and summary["passed"] == summary["total"] > 0
        )

        code, out, err = run_ctl(env, "check", "web")
        assert code == 1 and "web solves no exercise" in err, err
        code, out, err = run_ctl(env, "check", "secret")  # without --wait: it says it began
        assert code == 0 and out.startswith("secret: checking as secret_number ("), (out, err)
        wait_for(
            lambda: board.api("GET", "/api/servers/secret/check")[1]["state"] != "running", 120, "the run"
        )
    finally:
        board.stop_everything()
        board.stop()
