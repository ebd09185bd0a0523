"""When a recording begins and ends, and what the recordings list counts of one: a pure
rule fed with the published events, in the order they were published.

A recording begins with the first `server` event whose state is not a stopped one, and
ends when every server is in a stopped state: at once after "stop everything" (the
timeline's `stop` event of no single server), otherwise once they have all stayed stopped
for a while (the recorder's `end_after`), so a restart or an automatic restart does not
split a recording.
"""

import dataclasses
import time

from supervisor.core.states import STOPPED_STATES

STOPPED_NAMES = frozenset(state.name for state in STOPPED_STATES)


@dataclasses.dataclass(frozen=True)
class RecordingRule:
    """Which servers are up, whether a recording is on, and since when all are stopped."""

    running: frozenset = frozenset()
    recording: bool = False
    stopping_all: bool = False
    empty_since: float | None = None

    def after(self, kind, payload, t):
        """(the rule after this event, "begin" | "end" | None)."""
        if kind == "event" and payload.get("kind") == "stop" and payload.get("server") is None:
            if not self.recording:
                return self, None
            if not self.running:
                return RecordingRule(), "end"
            return dataclasses.replace(self, stopping_all=True), None
        if kind != "server":
            return self, None
        name = payload.get("name")
        up = payload.get("state") not in STOPPED_NAMES
        running = self.running | {name} if up else self.running - {name}
        if not self.recording:
            if up:
                return RecordingRule(running, recording=True), "begin"
            return dataclasses.replace(self, running=running), None
        if running:
            return dataclasses.replace(self, running=running, empty_since=None), None
        if self.stopping_all:
            return RecordingRule(), "end"
        return dataclasses.replace(self, running=running, empty_since=self.empty_since or t), None

    def expired(self, now, end_after):
        """True when a recording should end because everything stayed stopped long enough."""
        return self.recording and self.empty_since is not None and now - self.empty_since >= end_after

    def started(self):
        return dataclasses.replace(self, recording=True, stopping_all=False, empty_since=None)

    def stopped(self):
        return RecordingRule(self.running)


class Tally:
    """What the recordings list shows of one recording: servers, forks, kills."""

    def __init__(self):
        self.servers, self.forks, self.kills = [], 0, 0

    def count(self, kind, payload):
        if kind == "server" and payload.get("name") not in self.servers:
            self.servers.append(payload.get("name"))
        elif kind == "proc" and payload.get("kind") == "fork":
            self.forks += 1
        elif kind == "event" and payload.get("kind") == "kill":
            self.kills += 1


def default_title(t, payload=None):
    name = payload.get("name") if isinstance(payload, dict) else None
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(t))
    return f"{stamp} {name}" if name else stamp
