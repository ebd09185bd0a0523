"""The message queue between the supervisor and the viewer workers: python-socketio's own
RedisManager, with a number on every message the supervisor publishes, so that a worker
tells a gap from a quiet moment.

- The supervisor's manager is write-only: it publishes every event to the channel (and
  hands it to its own browsers) and never listens. Each published emit carries the next
  number under `SEQ`; an event that could not be published (the queue unreachable, or the
  supervisor's outbox full) uses a number up all the same (`skip()`), so the workers see
  the gap when the queue is back.
- A worker's manager listens (python-socketio's listener thread relays each message to
  the worker's browsers, and reconnects with its own backoff: 1, 2, 4 … 60 s). Before a
  numbered message is relayed, the worker's feed sees it (`feed.received`), under the
  feed's lock, which also orders the relay against the snapshots the feed sends.
- The supervisor's heartbeat is an emit to `HEARTBEAT_ROOM`, a room no browser is in: it
  reaches the workers' queues and no page.

`_publish` and `_handle_emit` are python-socketio's hooks for a pub/sub backend
(socketio/pubsub_manager.py); the transport, its reconnection and the relay are its own.
"""

import itertools
import logging
import socket

from socketio import RedisManager

log = logging.getLogger(__name__)

SEQ = "forkwatch_seq"
HEARTBEAT = "heartbeat"
HEARTBEAT_ROOM = "forkwatch:heartbeat"
# Bounded connects; keepalive finds a peer that vanished without closing (a cable pulled).
KEEPALIVE = {
    "socket_connect_timeout": 2.0,
    "socket_keepalive": True,
    "socket_keepalive_options": {socket.TCP_KEEPIDLE: 5, socket.TCP_KEEPINTVL: 2, socket.TCP_KEEPCNT: 3},
}


def shown_url(url):
    """A queue URL fit for a log line: its password replaced by ***."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at:
        return url
    user = userinfo.partition(":")[0]
    return f"{scheme}{sep}{user}:***@{host}"


class PublishingQueue(RedisManager):
    """The supervisor's side: write-only, every emit numbered."""

    def __init__(self, url, channel):
        # A publish waits at most 2 s for Redis's answer: the outbox's thread, never the
        # watcher, is the one that waits.
        super().__init__(
            url,
            channel=channel,
            write_only=True,
            logger=log,
            redis_options={**KEEPALIVE, "socket_timeout": 2.0},
        )
        self._numbers = itertools.count(1)
        self.published = True  # whether the latest publish reached Redis

    def skip(self):
        """An event the workers will not get: its number is used up, so they see a gap."""
        next(self._numbers)

    def _publish(self, data):
        if data.get("method") == "emit":
            data[SEQ] = next(self._numbers)
        answer = super()._publish(data)  # None when Redis could not be reached (it logs why)
        self.published = answer is not None
        return answer


class ListeningQueue(RedisManager):
    """A worker's side: python-socketio's listener, each numbered message shown to the feed
    first; the heartbeat goes no further."""

    def __init__(self, url, channel, feed):
        super().__init__(url, channel=channel, logger=log, redis_options=dict(KEEPALIVE))
        self.feed = feed

    def start_listening(self):
        """Subscribe now rather than at the first browser's connection (python-socketio
        initializes its manager then): the feed must know the queue's state before any page
        asks."""
        if not self.server.manager_initialized:
            self.server.manager_initialized = True
            self.initialize()

    def _handle_emit(self, message):
        number = message.get(SEQ)
        if number is None:  # not the supervisor's (this worker's own emits stay local)
            return super()._handle_emit(message)
        with self.feed.lock:
            self.feed.received(message.get("host_id"), number)
            if message.get("room") != HEARTBEAT_ROOM:
                super()._handle_emit(message)
        return None
