"""SIGKILL of the process that records: the file stays intact and keeps everything
published until about a second before the kill."""

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

from supervisor.core.recorder import Recorder
from supervisor.core.recordings_file import diagnose
from tests.helpers import ROOT, child_env, wait_for


class Progress:
    """The `SEQ TIME` lines of a recording process, read on a thread."""

    def __init__(self, proc):
        self.lines = []
        self._thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream):
        for line in stream:
            seq, when = line.split()
            self.lines.append((int(seq), float(when)))

    def recorded_for(self):
        return self.lines[-1][1] - self.lines[0][1] if len(self.lines) > 1 else 0.0

    def published_by(self, moment):
        return max(seq for seq, when in self.lines if when <= moment)

    def join(self):
        self._thread.join(5.0)


def record_and_kill(path, seconds):
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.core.record_until_killed", path],
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
        cwd=ROOT,
    )
    progress = Progress(proc)
    try:
        wait_for(lambda: progress.recorded_for() >= seconds, 20.0, f"{seconds} s of recording")
        killed_at = time.time()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        progress.join()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return progress, killed_at


def stored_seqs(path, recording_id):
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return [
            row[0]
            for row in conn.execute(
                "SELECT json_extract(payload, '$.seq') FROM events WHERE recording = ? AND kind != 'server' ORDER BY id",
                (recording_id,),
            )
        ]
    finally:
        conn.close()


def test_sigkill_loses_at_most_the_last_second_and_never_corrupts_the_file(recordings_path):
    for round_, recording_id in enumerate((1, 2)):
        progress, killed_at = record_and_kill(recordings_path, seconds=1.2)
        assert diagnose(recordings_path) is None
        seqs = stored_seqs(recordings_path, recording_id)
        assert seqs == list(range(len(seqs))), "events are missing in the middle"
        assert seqs[-1] >= progress.published_by(killed_at - 1.0), (
            f"round {round_}: the last event stored is {seqs[-1]}; "
            f"{progress.published_by(killed_at - 1.0)} had been published a second before the kill"
        )

    recorder = Recorder(recordings_path).start()  # the next run ends both at their last event
    try:
        assert recorder.moved_aside is None
        listed = {meta["id"]: meta for meta in recorder.store.list()}
        assert sorted(listed) == [1, 2]
        for meta in listed.values():
            assert not meta["recording"]
            assert meta["ended"] == recorder.store.events(meta["id"], after=0, limit=20000)[-1]["t"]
    finally:
        assert recorder.close()
