"""The client's address behind trusted proxies (a viewer worker, nginx), their
connections held to the total cap only, and queue URLs in log lines without their
password."""

import pytest

from supervisor.web.message_queue import shown_url
from supervisor.web.proxies import TrustedProxies
from tests.helpers import TOKEN, Dashboard, wait_for
from tests.web.test_room_http import connect_from, get_from

LOOPBACK = TrustedProxies(None, ["127.0.0.1", "::1"])


@pytest.mark.parametrize(
    "peer, forwarded, client",
    [
        ("127.0.0.1", "192.168.1.20", "192.168.1.20"),  # a worker on this machine names the browser
        ("127.0.0.1", "10.9.9.9, 192.168.1.20", "192.168.1.20"),  # the browser's own claim is ignored
        ("127.0.0.1", "192.168.1.20, 127.0.0.1", "192.168.1.20"),  # nginx, then a worker, both trusted
        ("127.0.0.1", "127.0.0.1", "127.0.0.1"),  # all trusted: the first hop
        ("192.168.1.20", "10.0.0.1", "192.168.1.20"),  # an untrusted peer claims what it likes: no
        ("127.0.0.1", "", "127.0.0.1"),
        ("127.0.0.1", "not-an-address", "127.0.0.1"),
        ("127.0.0.1", "192.168.1.20, junk", "127.0.0.1"),  # nothing believed beyond a bad hop
        ("::1", "2001:db8::7", "2001:db8::7"),
    ],
)
def test_the_client_is_the_first_address_no_trusted_proxy_owns(peer, forwarded, client):
    assert LOOPBACK.client_address(peer, forwarded) == client


def test_with_nobody_trusted_the_header_means_nothing():
    assert TrustedProxies(None, []).client_address("127.0.0.1", "192.168.1.20") == "127.0.0.1"


def test_the_middleware_rewrites_remote_addr():
    seen = {}

    def app(environ, start_response):
        seen["addr"] = environ["REMOTE_ADDR"]
        return []

    TrustedProxies(app, ["127.0.0.1"])({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "10.1.2.3"}, None)
    assert seen["addr"] == "10.1.2.3"


def test_queue_urls_are_shown_without_their_password():
    assert shown_url("redis://:s3cret@10.0.0.5:6379/0") == "redis://:***@10.0.0.5:6379/0"
    assert shown_url("redis://user:s3cret@host:6379/1") == "redis://user:***@host:6379/1"
    assert shown_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_a_trusted_proxys_connections_count_in_the_total_only(tmp_path):
    """nginx in front of a worker, or a worker in front of the supervisor, carries many
    clients on its connections: the cap per address would shut the hall out."""
    limits = {"max_connections": 40, "max_connections_per_address": 5, "trusted_proxies": ["127.0.0.9"]}
    board = Dashboard(str(tmp_path), TOKEN, **limits).start()
    held = []
    try:
        held += [connect_from("127.0.0.9", board.port) for _ in range(12)]
        wait_for(lambda: board.api("GET", "/api/room")[1]["open_connections"] >= 12, 5, "12 held")
        status, _ = get_from("127.0.0.9", board.port, "/healthz")
        assert status == 200  # the 13th from the proxy, past 5 an address
        held += [connect_from("127.0.0.8", board.port) for _ in range(5)]
        wait_for(lambda: board.api("GET", "/api/room")[1]["open_connections"] >= 17, 5, "17 held")
        status, answer = get_from("127.0.0.8", board.port, "/healthz")
        assert status == 503 and "your address has 5 open connections" in answer["error"]
    finally:
        for sock in held:
            sock.close()
        board.stop()
