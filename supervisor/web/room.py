"""The room's limits: how much of the dashboard one client may take — open connections,
Socket.IO messages a second, wrong tokens — with every refusal counted.

Forty laptops and one curious student are the normal case, so each limit is per address
(a student's laptop) and in total, generous for people and scripts but finite. The counts
are what `GET /api/room` shows.
"""

import collections
import threading
import time

DROPPED, FLOODING = "dropped", "flooding"
FLOOD_DEBT = 400  # messages dropped beyond those let through: the session is cut off


class Buckets:
    """A token bucket per key: `rate` a second, at most `burst` saved up."""

    def __init__(self, rate, burst):
        self.rate = float(rate)
        self.burst = float(burst)
        self._levels = {}  # key -> (tokens, when)
        self._lock = threading.Lock()

    def _level(self, key, now):
        tokens, when = self._levels.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - when) * self.rate)

    def take(self, key):
        """One token for key; False (and nothing taken) when its bucket is empty."""
        now = time.monotonic()
        with self._lock:
            tokens = self._level(key, now)
            if len(self._levels) > 10_000:  # forget keys whose buckets are full again
                self._levels = {k: v for k, v in self._levels.items() if self._level(k, now) < self.burst}
            if tokens < 1:
                self._levels[key] = (tokens, now)
                return False
            self._levels[key] = (tokens - 1, now)
            return True

    def has(self, key):
        with self._lock:
            return self._level(key, time.monotonic()) >= 1

    def forget(self, key):
        with self._lock:
            self._levels.pop(key, None)


class Room:
    def __init__(self, settings):
        self.max_connections = settings["max_connections"]
        self.max_per_address = settings["max_connections_per_address"]
        self.counts = collections.Counter()
        self._open = collections.Counter()  # address -> open connections
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._session_messages = Buckets(settings["event_rate"], settings["event_burst"])
        self._address_messages = Buckets(settings["address_event_rate"], settings["address_event_burst"])
        self._wrong_tokens = Buckets(settings["token_failure_rate"], settings["token_failure_burst"])
        self._new_sessions = Buckets(settings["session_rate"], settings["session_burst"])
        self._debts = collections.Counter()  # session -> drops not yet worked off

    # --- connections and sessions -----------------------------------------------------

    def full(self, total, from_address, what):
        """The sentence refusing one more `what` (connection, session), or None."""
        if total >= self.max_connections:
            self.count(f"refused_{what}s")
            return f"the dashboard has {total} open {what}s, its limit; try again in a moment"
        if from_address >= self.max_per_address:
            self.count(f"refused_{what}s")
            return f"your address has {from_address} open {what}s, the limit for one address"
        return None

    def session_too_soon(self, address):
        """The sentence refusing a new Socket.IO session from an address that opened too
        many just now, or None. Each session, even one ended at once, keeps Engine.IO's
        ping thread asleep for its ping interval, so the rate bounds those threads."""
        if self._new_sessions.take(address):
            return None
        self.count("refused_sessions")
        return "your address opened too many live connections just now; wait a moment"

    def open_connection(self, address, shared=False):
        """Count a new connection in, or answer the sentence that refuses it; a `shared`
        address (a trusted proxy's) is held to the total only."""
        with self._lock:
            mine = 0 if shared else self._open[address]
            refusal = self.full(sum(self._open.values()), mine, "connection")
            if refusal is None:
                self._open[address] += 1
                self.count("connections")
            return refusal

    def close_connection(self, address):
        with self._lock:
            self._open[address] -= 1
            if self._open[address] <= 0:
                del self._open[address]

    def open_connections(self):
        with self._lock:
            return sum(self._open.values())

    # --- messages ---------------------------------------------------------------------

    def admit_message(self, session, address):
        """None: handle it. DROPPED: over a limit, dropped and counted. FLOODING: this
        session keeps sending far past its limit; cut it off."""
        if not self._session_messages.take(session):
            self.count("messages_dropped_session_limit")
        elif not self._address_messages.take(address):
            self.count("messages_dropped_address_limit")
        else:
            self.count("messages_accepted")
            if self._debts[session]:
                self._debts[session] -= 1
            return None
        self._debts[session] += 1
        return FLOODING if self._debts[session] > FLOOD_DEBT else DROPPED

    def forget_session(self, session):
        self._session_messages.forget(session)
        self._debts.pop(session, None)

    # --- tokens -----------------------------------------------------------------------

    def may_try_token(self, address):
        """False while this address has used up its allowance of wrong tokens."""
        if self._wrong_tokens.has(address):
            return True
        self.count("token_attempts_refused")
        return False

    def token_failed(self, address):
        self.count("wrong_tokens")
        self._wrong_tokens.take(address)

    # --- counts -----------------------------------------------------------------------

    def count(self, what, n=1):
        with self._count_lock:
            self.counts[what] += n

    def figures(self):
        with self._count_lock:
            counts = dict(self.counts)
        return {"open_connections": self.open_connections(), **counts}
