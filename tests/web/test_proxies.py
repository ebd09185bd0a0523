"""The client's address behind trusted proxies (a viewer worker, nginx), and queue URLs in
log lines without their password."""

import pytest

from supervisor.web.message_queue import shown_url
from supervisor.web.proxies import TrustedProxies

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
