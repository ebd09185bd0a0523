"""A smoke run of the recording benchmark at tiny sizes, so its code cannot rot. The
figures are only printed (python -m bench.recording), never judged here."""

from bench import recording


def test_the_recording_benchmark_runs_end_to_end_at_tiny_sizes():
    results = recording.run(quick=True)
    append = results["append"]
    assert append["off"]["n"] == append["on"]["n"] == 700
    assert append["dropped"] == 0
    assert results["size"]["forks"] == 100 and results["size"]["bytes_per_1000_forks"] > 0
    hour = results["one_hour"]
    assert (hour["seconds"], hour["events"], hour["snapshots"]) == (60, 420, 12)
    assert hour["open_and_seek_to_end_ms"]["n"] == 3
    assert 0 < hour["events_after_last_snapshot"] <= 5 * 7
