"""Intruders: tokens compared in constant time, cross-origin requests, foreign Socket.IO origins,
the address the dashboard binds."""

import hmac
import json
import signal
import sys
import urllib.error
import urllib.request

import psutil
import pytest
import socketio

from tests.helpers import TOKEN, child_env, start_cli_until_instructor_line


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
    assert live.server_detail("clock")["state"] == "STOPPED"
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


@pytest.mark.reliability("intruders", "binds 127.0.0.1 by default; warns and shows real addresses beyond it")
def test_binding_and_the_warning(tmp_path, report):
    outputs = {}
    for host in (None, "0.0.0.0"):
        argv = [sys.executable, "-m", "supervisor", "--port", "0"] + (["--host", host] if host else [])
        proc, lines = start_cli_until_instructor_line(argv, child_env(XDG_CONFIG_HOME=str(tmp_path)))
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


def test_ctrl_c_stops_it_even_when_started_with_sigint_ignored(tmp_path):
    """A shell starts a background job with SIGINT ignored (`cmd &`): the dashboard restores
    the default, so Ctrl-C or kill -INT still stops every server and exits cleanly."""
    command = f"trap '' INT; exec {sys.executable} -m supervisor --port 0"
    proc, lines = start_cli_until_instructor_line(
        ["sh", "-c", command], child_env(XDG_CONFIG_HOME=str(tmp_path))
    )
    with open(f"/proc/{proc.pid}/status") as status:
        ignored = int(next(line for line in status if line.startswith("SigIgn:")).split()[1], 16)
    assert not ignored & (1 << (signal.SIGINT - 1)), "SIGINT is still ignored"
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0 and "forkwatch: stopped" in out, out


def test_a_token_on_the_command_line_is_warned_about(tmp_path):
    argv = [sys.executable, "-m", "supervisor", "--port", "0"]
    warned = {}
    for how, extra_argv, extra_env in (
        ("argv", ["--token", "seen-by-ps"], {}),
        ("env", [], {"FORKWATCH_TOKEN": "x"}),
    ):
        proc, lines = start_cli_until_instructor_line(
            argv + extra_argv, child_env(XDG_CONFIG_HOME=str(tmp_path / how), **extra_env)
        )
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        proc.stdout.close()
        warned[how] = any("warning: --token shows the token to every user" in line for line in lines)
    assert warned == {"argv": True, "env": False}
