"""Recording this dashboard's demos: the recorder opened in the config folder and fed every
event the manager publishes, each game's secret hidden from its round's start until the
instructor reveals it, the console's last lines in every snapshot; or, when recording is
off, the sentence that says why.

    recording = Recording.start(manager, settings)
    recording.store           # the recordings (recordings.py), None when off
    recording.off             # why recording is off, else None
    recording.notice          # a broken file moved aside at start, else None
    recording.close()         # after manager.shutdown(): ends the recording under way
"""

import logging
import os

from supervisor.core.recorder import MB, Recorder
from supervisor.core.recordings_file import diagnose

log = logging.getLogger(__name__)

FILE_NAME = "recordings.sqlite3"
SNAPSHOT_LINES = 200


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
        recorder = Recorder(
            path,
            snapshot=lambda: snapshot_with_console(manager),
            max_bytes=int(settings.get("max_recordings_mb", 200) * MB),
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
        manager.subscribe(Feed(manager, recorder))
        return cls(recorder.start(), notice=notice)

    @property
    def store(self):
        return self.recorder.store if self.recorder is not None else None

    def close(self):
        if self.recorder is not None and not self.recorder.close():
            log.error("the recorder did not finish writing in time; the last events may be lost")


class Feed:
    """The manager's subscriber that records: hides a game's secret when its round starts
    (the STARTING event, published before the server is spawned) and shows it again from
    the instructor's reveal on."""

    def __init__(self, manager, recorder):
        self.manager = manager
        self.recorder = recorder

    def __call__(self, kind, payload):
        if kind == "server" and payload.get("state") == "STARTING":
            self._hide_round(payload.get("name"))
        elif kind == "secret" and payload.get("revealed"):
            self.recorder.reveal(payload.get("server"))
        self.recorder.append(kind, payload)

    def _hide_round(self, name):
        server = self.manager.servers.get(name)
        if server is None or server.spec.secret is None or not server.secret:
            return
        self.recorder.hide(name, server.spec.secret.kind, server.secret)


def snapshot_with_console(manager):
    """The manager's snapshot with each server's last console lines (`output`), so a replay
    that seeks shows the console as it was."""
    state = manager.snapshot()
    for info in state["servers"]:
        if "output" not in info:
            info["output"] = manager.output(info["name"], SNAPSHOT_LINES)["lines"]
    return state
