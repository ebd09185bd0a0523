"""Fixtures for the recorder's tests: recorders on real SQLite files in tmp_path, whose
writer threads are always stopped at teardown."""

import pytest

from supervisor.core.recorder import Recorder


@pytest.fixture
def recordings_path(tmp_path):
    return str(tmp_path / "recordings.sqlite3")


@pytest.fixture
def make_recorder(recordings_path):
    made = []

    def make(path=None, **options):
        options.setdefault("commit_interval", 0.05)
        recorder = Recorder(path or recordings_path, **options)
        made.append(recorder)
        return recorder.start()

    yield make
    for recorder in made:
        assert recorder.close(), "the recorder's writer thread did not stop"
        assert not recorder.running
