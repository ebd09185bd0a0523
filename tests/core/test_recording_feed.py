"""What the dashboard records, from a real Manager into a real SQLite file: every console
line once and in order, and snapshots whose console, with the events after them, shows
each line exactly once however the snapshot fell among the output events."""

from supervisor.core.recorder import Recorder
from supervisor.core.recording import Feed
from tests.helpers import start_ready, wait_for, wait_state

FORKS = 100


def test_a_snapshot_and_the_events_after_it_show_each_console_line_once(manager, recordings_path):
    feed = Feed(manager)
    recorder = Recorder(
        recordings_path, snapshot=feed.snapshot, snapshot_interval=0.005, commit_interval=0.01
    )
    feed.recorder = recorder.start()
    manager.subscribe(feed)
    try:
        start_ready(manager, "fork_demo", {"reap": True})
        for _ in range(FORKS):
            manager.send_stdin("fork_demo", "")  # each line forks a child: two more console lines
        wait_for(
            lambda: (
                sum(
                    line.startswith("hello from child") for line in manager.output("fork_demo", 5000)["lines"]
                )
                == FORKS + 1
            ),
            what="every child's hello",
        )
        manager.stop_all()
        wait_state(manager, "fork_demo", "STOPPED")
    finally:
        manager.unsubscribe(feed)
        assert recorder.close()
    [meta] = recorder.store.list()
    document = recorder.store.export(meta["id"])
    outputs = [
        e for e in document["events"] if e["kind"] == "output" and e["payload"]["server"] == "fork_demo"
    ]
    console = [line for e in outputs for line in e["payload"]["lines"]]
    assert console == manager.output("fork_demo", 5000)["lines"]
    assert [e["payload"]["seq"] for e in outputs] == [
        sum(len(e["payload"]["lines"]) for e in outputs[:index]) for index in range(len(outputs))
    ]
    assert len(document["snapshots"]) >= 5
    for snapshot in document["snapshots"]:
        [info] = [s for s in snapshot["state"]["servers"] if s["name"] == "fork_demo"]
        shown = list(info["output"])  # what a replay that seeks here shows, then plays on
        for event in outputs:
            if event["id"] > snapshot["event_id"]:
                shown += event["payload"]["lines"][max(0, info["output_seq"] - event["payload"]["seq"]) :]
        assert shown == console[info["output_seq"] - len(info["output"]) :], snapshot["t"]
