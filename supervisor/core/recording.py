"""Recording this dashboard's demos: the recorder opened in the config folder and fed every
event the manager publishes, each game's secret hidden from its round's start until the
instructor reveals it, each server's console in every snapshot; or, when recording is
off, the sentence that says why.

    recording = Recording.start(manager, settings)
    recording.store           # the recordings (recordings.py), None when off
    recording.off             # why recording is off, else None
    recording.notice          # a broken file moved aside at start, else None
    recording.close()         # after manager.shutdown(): ends the recording under way
"""

import collections
import logging
import os
import threading

from supervisor.core.recorder import MB, Recorder
from supervisor.core.recordings_file import diagnose

log = logging.getLogger(__name__)

FILE_NAME = "recordings.sqlite3"
SNAPSHOT_LINES = 200
COMMIT_INTERVAL_S = 0.5  # a SIGKILL loses at most this much; fewer commits cost the demo less


class Recording:
    def __init__(self, recorder=None, off=None, notice=None):
        self.recorder = recorder
        self.off = off
        self.notice = notice

    @classmethod
    def start(cls, manager, settings):
        """Open the recordings file in the config folder and subscribe the recorder to
        `manager`; with `recording = false` in the settings, nothing is opened."""
        if not settings.get("recording", True):
            return cls(off="it is turned off in the settings (recording = false)")
        path = os.path.join(settings["state_dir"], FILE_NAME)
        feed = Feed(manager)
        recorder = Recorder(
            path,
            snapshot=feed.snapshot,
            max_bytes=int(settings.get("max_recordings_mb", 200) * MB),
            commit_interval=COMMIT_INTERVAL_S,
        )
        if recorder.store is None:
            return cls(off=recorder.unavailable)
        notice = None
        if recorder.moved_aside:
            why = diagnose(recorder.moved_aside) or "it could not be used"
            notice = (
                f"the recordings file could not be used ({why}); it was moved aside to "
                f"{recorder.moved_aside} and a fresh one started"
            )
        feed.recorder = recorder
        manager.subscribe(feed)
        return cls(recorder.start(), notice=notice)

    @property
    def store(self):
        return self.recorder.store if self.recorder is not None else None

    def close(self):
        if self.recorder is not None and not self.recorder.close():
            log.error("the recorder did not finish writing in time; the last events may be lost")


class Feed:
    """The manager's subscriber that records: hides a game's secret when its round starts
    (the STARTING event, published before the server is spawned), shows it again from the
    instructor's reveal on, and keeps each server's console as the page shows it.

    A console line's place is its number among the lines of its server since the dashboard
    started: an output event is recorded with `seq` (its first line's number) and each
    snapshot says where its console ends (`output_seq`), so a replay that seeks shows a
    line once even when its event was published while the snapshot was being taken."""

    def __init__(self, manager, recorder=None, lines=SNAPSHOT_LINES):
        self.manager = manager
        self.recorder = recorder
        self._lock = threading.Lock()
        self._consoles = collections.defaultdict(lambda: [collections.deque(maxlen=lines), 0])

    def __call__(self, kind, payload):
        if kind == "server" and payload.get("state") == "STARTING":
            self._hide_round(payload.get("name"))
        elif kind == "secret" and payload.get("revealed"):
            self.recorder.reveal(payload.get("server"))
        with self._lock:  # the consoles change in the order the events are recorded
            if kind == "server" and payload.get("state") == "STARTING":
                self._consoles[payload.get("name")][0].clear()  # as the page: a start, a new console
            elif kind == "output" and isinstance(payload.get("lines"), list):
                console = self._consoles[payload.get("server")]
                payload = {**payload, "seq": console[1]}
                console[0].extend(payload["lines"])
                console[1] += len(payload["lines"])
            self.recorder.append(kind, payload)

    def snapshot(self):
        """The manager's snapshot with each server's console as recorded so far: its last
        lines (`output`) and the number of the line after them (`output_seq`)."""
        state = self.manager.snapshot()
        with self._lock:
            consoles = {name: (list(lines), count) for name, (lines, count) in self._consoles.items()}
        for info in state["servers"]:
            info["output"], info["output_seq"] = consoles.get(info["name"], ([], 0))
        return state

    def _hide_round(self, name):
        server = self.manager.servers.get(name)
        if server is None or server.spec.secret is None or not server.secret:
            return
        self.recorder.hide(name, server.spec.secret.kind, server.secret)
