"""The client's address behind a proxy: `X-Forwarded-For` believed only from a trusted peer.

A viewer worker forwards a browser's commands and plays to the supervisor, and nginx may
stand in front of the workers; per-address limits (plays, stack reads) must see the
browser, not the worker or nginx. The header is read from the right — each trusted hop
appended the address it saw — and the first address no trusted proxy owns is the client.
A request straight from an untrusted peer keeps that peer's address, whatever it claims.
"""

import ipaddress


def _address(text):
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def addresses(texts):
    """The set of IP addresses among `texts` (the setting `trusted_proxies`)."""
    return {a for a in (_address(t) for t in texts) if a is not None}


def is_proxy(peer, trusted):
    """Whether a TCP peer is one of the `trusted` addresses (its connections carry others')."""
    return _address(peer) in trusted


class TrustedProxies:
    """WSGI middleware: REMOTE_ADDR becomes the client's, as the trusted hops name it."""

    def __init__(self, app, trusted):
        self.app = app
        self.trusted = addresses(trusted)

    def client_address(self, peer, forwarded_for):
        if not self.trusted or _address(peer) not in self.trusted or not forwarded_for:
            return peer
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        client = peer
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                return client  # a malformed hop: trust nothing beyond it
            client = str(address)
            if address not in self.trusted:
                return client
        return client

    def __call__(self, environ, start_response):
        peer = environ.get("REMOTE_ADDR", "")
        environ["REMOTE_ADDR"] = self.client_address(peer, environ.get("HTTP_X_FORWARDED_FOR", ""))
        return self.app(environ, start_response)
