"""The pages: roles, the token leaving the address bar, security headers, no debug mode, the Join panel."""

import pytest

from tests.helpers import TOKEN


def test_viewer_page_has_no_controls_and_no_secrets(client):
    page = client.get("/").get_data(as_text=True)
    assert 'data-role="viewer"' in page
    assert 'data-command="start"' not in page and 'id="stop-all"' not in page
    assert '<script id="snapshot" type="application/json">' in page
    assert TOKEN not in page


def test_token_login_sets_a_strict_cookie_and_redirects_away_from_the_token(client):
    response = client.get(f"/?token={TOKEN}")
    assert response.status_code == 303 and response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = client.get("/").get_data(as_text=True)
    assert 'data-role="instructor"' in page and 'data-command="start"' in page
    assert TOKEN not in page


def test_wrong_token_stays_viewer_and_says_so(client):
    response = client.get("/?token=guess", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert 'data-role="viewer"' in page and "That token is wrong" in page


def test_security_headers(client):
    response = client.get("/")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.reliability("intruders", "debug mode switched on by FLASK_DEBUG=1")
def test_debug_mode_cannot_be_switched_on(app_factory, monkeypatch, report):
    monkeypatch.setenv("FLASK_DEBUG", "1")
    app = app_factory()
    assert app.debug is False


def test_the_page_says_how_servers_are_held(app, client):
    """cgroups where the machine allows them (here: root, a writable hierarchy), else
    process groups, with the reason; the snapshot says the same."""
    manager = app.extensions["forkwatch"]
    page = client.get("/").get_data(as_text=True)
    assert manager.containment_text.startswith("cgroups: cgroup v2 (cgroup.kill), pids.max")
    assert 'id="containment"' in page and "title=\"how forkwatch holds each server's processes: " in page
    assert '">cgroups</span>' in page and manager.snapshot()["containment"] == manager.containment_text


def test_healthz_and_catalog(client):
    assert client.get("/healthz").get_json() == {"ok": True}
    names = [entry["name"] for entry in client.get("/api/catalog").get_json()]
    assert "forking_clock" in names and "fork_demo" in names


def test_join_panel_shows_the_address_and_a_qr_code(app_factory):
    app = app_factory(join={"viewer": "http://10.1.2.3:5000/", "all": ["http://10.1.2.3:5000/"]})
    page = app.test_client().get("/").get_data(as_text=True)
    assert 'id="join-url">http://10.1.2.3:5000/<' in page
    assert "<svg" in page.split('class="join-qr"')[1][:200]


def test_no_join_panel_on_loopback(client):
    assert 'id="join"' not in client.get("/").get_data(as_text=True)
