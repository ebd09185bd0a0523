"""The instructor's session: revoked by leaving instructor mode and by a new token (also
`forkwatch --rotate-token`), safe from other sites (logout needs the CSRF token; a
navigation from another site does not overwrite the cookie), wrong tokens throttled per
address, and only this dashboard's own host names answered."""

import re
import signal
import subprocess
import sys
import urllib.request

import pytest

from tests.helpers import (
    BEARER,
    ROOT,
    TOKEN,
    app_config,
    browser_session,
    child_env,
    live_client,
    received,
    start_cli_until_instructor_line,
)

ROGUE = {"REMOTE_ADDR": "198.51.100.7"}


def cookie_of(client):
    return client.get_cookie("forkwatch").value


def with_cookie(app, value):
    """A new browser that holds a copy of someone's session cookie."""
    thief = app.test_client()
    thief.set_cookie("forkwatch", value)
    return thief


@pytest.mark.reliability("intruders", "an instructor cookie copied before `Leave instructor mode`, then used")
def test_leaving_instructor_mode_revokes_every_earlier_cookie_and_socket(app, report):
    client, headers = browser_session(app, instructor=True)
    copied = cookie_of(client)
    socket_before = live_client(app, client)
    assert received(socket_before, "snapshot")[0]["role"] == "instructor"
    other_device, other_headers = browser_session(app, instructor=True)
    response = client.post("/logout", data={"csrf": headers["X-CSRF-Token"]})
    assert response.status_code == 303
    thief = with_cookie(app, copied)
    refused = [
        thief.post("/api/servers/clock/start", headers=headers),
        other_device.post("/api/servers/clock/start", headers=other_headers),
    ]
    assert [r.status_code for r in refused] == [401, 401], [r.get_json() for r in refused]
    ack = socket_before.emit("start", {"name": "clock"}, namespace="/live", callback=True)
    assert ack["ok"] is False and "session has ended" in ack["error"]
    page = thief.get("/").get_data(as_text=True)
    assert 'data-role="viewer"' in page and "Your instructor session has ended" in page
    assert received(live_client(app, with_cookie(app, copied)), "snapshot")[0]["role"] == "viewer"
    assert all(s.state.name == "STOPPED" for s in app.extensions["forkwatch"].servers.values())
    socket_before.disconnect(namespace="/live")
    report["cases"] = 4
    report["detail"] = "the copied cookie, another device's cookie and an open socket all refused (401 / ack)"


def test_a_viewer_cannot_end_the_instructors_session(app):
    viewer, headers = browser_session(app)
    instructor, instructor_headers = browser_session(app, instructor=True)
    assert viewer.post("/logout", data={"csrf": headers["X-CSRF-Token"]}).status_code == 303
    assert instructor.post("/api/servers/clock/start", headers=instructor_headers).status_code == 200


@pytest.mark.reliability("intruders", "an instructor cookie after a restart with another token")
def test_a_new_token_revokes_the_cookies_of_the_old_one(app_factory, tmp_path, report):
    first = app_factory()
    client, headers = browser_session(first, instructor=True)
    copied = cookie_of(client)
    first.forkwatch_shutdown()  # the config folder's lock is free for the next run
    second = app_factory(token="another-token-9876")
    response = with_cookie(second, copied).post("/api/servers/clock/start", headers=headers)
    assert response.status_code == 401, response.get_json()
    report["detail"] = "refused (401): the session's stamp holds the old token's fingerprint"


def run_dashboard(home, *args):
    """`python -m supervisor ARGS` until it prints the instructor URL: (process, token, url)."""
    argv = [sys.executable, "-m", "supervisor", "--port", "0", *args]
    proc, lines = start_cli_until_instructor_line(argv, child_env(XDG_CONFIG_HOME=str(home)))
    assert lines and lines[-1].startswith("instructor:"), f"the dashboard did not start: {lines}"
    url, token = lines[-1].split()[1].split("?token=")
    return proc, token, url


def stop_dashboard(proc):
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    proc.stdout.close()


def login(url, token):
    """A cookie jar holding an instructor session of the dashboard at url."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(f"{url}?token={token}", timeout=10) as response:
        response.read()
    return opener


def role_of(opener, url):
    with opener.open(url, timeout=10) as response:
        page = response.read().decode()
    return re.search(r'data-role="(\w+)"', page).group(1)


@pytest.mark.reliability("intruders", "`forkwatch --rotate-token`: the old token and its cookies afterwards")
def test_rotate_token_makes_a_new_token_and_revokes_the_old_sessions(tmp_path, report):
    proc, old_token, url = run_dashboard(tmp_path)
    browser = login(url, old_token)
    assert role_of(browser, url) == "instructor"
    stop_dashboard(proc)
    proc, new_token, url = run_dashboard(tmp_path, "--rotate-token")
    try:
        assert new_token != old_token
        assert role_of(browser, url) == "viewer"
        request = urllib.request.Request(
            f"{url}api/stop-all", data=b"{}", method="POST", headers={"Authorization": f"Bearer {old_token}"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        refused.value.close()
        assert refused.value.code == 403
        assert role_of(login(url, new_token), url) == "instructor"
    finally:
        stop_dashboard(proc)
    done = subprocess.run(
        [sys.executable, "-m", "supervisor", "--rotate-token", "--port", "0"],
        env=child_env(XDG_CONFIG_HOME=str(tmp_path), FORKWATCH_TOKEN="from-the-environment"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and "FORKWATCH_TOKEN" in done.stderr
    report["cases"] = 3
    report["detail"] = "a new token; the old cookie is a viewer's, the old token refused (403)"


# --- other sites --------------------------------------------------------------------------


@pytest.mark.reliability("intruders", "a cross-site POST to /logout, and a cross-site link to the dashboard")
def test_other_sites_cannot_demote_the_instructor(app, report):
    client, headers = browser_session(app, instructor=True)
    assert client.post("/logout").status_code == 403  # no CSRF token: nothing changes
    assert client.post("/api/servers/clock/start", headers=headers).status_code == 200
    thief_view = app.test_client()  # the navigation arrives without the Strict cookie
    response = thief_view.get("/", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"})
    assert response.status_code == 200 and 'http-equiv="refresh"' in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers
    assert client.post("/api/servers/clock/stop", headers=headers).status_code == 200
    report["cases"] = 2
    report["detail"] = "logout without the CSRF token 403; the link gets a reload page and sets no cookie"


@pytest.mark.reliability(
    "intruders", "wrong tokens from one address, as fast as possible (Bearer, ?token=, Socket.IO)"
)
def test_wrong_tokens_are_throttled_per_address(app, report):
    client = app.test_client()
    codes = [
        client.post(
            "/api/stop-all", headers={"Authorization": f"Bearer guess{n}"}, environ_base=ROGUE
        ).status_code
        for n in range(200)
    ]
    assert codes[:10] == [403] * 10 and set(codes[10:]) == {429}
    right = client.post("/api/stop-all", headers=BEARER, environ_base=ROGUE)
    assert right.status_code == 429 and "too many wrong tokens" in right.get_json()["error"]
    assert client.get(f"/?token={TOKEN}", environ_base=ROGUE).status_code == 429
    assert client.post("/api/stop-all", headers=BEARER).status_code == 200  # another address
    socketio = app.extensions["forkwatch_socketio"]
    sio = socketio.test_client(app, namespace="/live", auth={"token": "guess"}, headers={"X-Nothing": "1"})
    assert not sio.is_connected(namespace="/live")
    report["cases"] = 200
    report["detail"] = "10 answered 403, then 429 for every attempt from that address (even the right token)"


# --- host names --------------------------------------------------------------------------


@pytest.mark.reliability(
    "intruders", "a Host header naming another site (DNS rebinding): page, API, Socket.IO"
)
def test_only_the_dashboards_own_host_names_are_answered(app_factory, report):
    app = app_factory(public_hosts=["class.example"])
    client = app.test_client()
    for path in ("/", "/api/servers", "/healthz", "/socket.io/?EIO=4&transport=polling"):
        response = client.get(path, headers={"Host": "evil.example:5000"})
        assert response.status_code == 400, path
        assert "does not answer to the host name 'evil.example'" in response.get_json()["error"]
    for host in (
        "localhost:5000",
        "127.0.0.1:5000",
        "[::1]:5000",
        "127.0.0.1",
        "class.example",
        "CLASS.example.",
    ):
        assert client.get("/healthz", headers={"Host": host}).status_code == 200, host
    report["cases"] = 10
    report["detail"] = (
        "400 with a sentence on every route; localhost, the bound address, --public-host answered"
    )


def test_listening_beyond_loopback_answers_the_join_panels_addresses(tmp_path):
    from supervisor import create_app
    from supervisor.proc.host import lan_addresses

    app = create_app(app_config(tmp_path, host="0.0.0.0", watchdog=False))
    try:
        client = app.test_client()
        for address in lan_addresses():
            assert client.get("/healthz", headers={"Host": f"{address}:5000"}).status_code == 200
        assert client.get("/healthz", headers={"Host": "evil.example"}).status_code == 400
    finally:
        app.forkwatch_shutdown()
