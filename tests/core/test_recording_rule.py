"""The rule that begins and ends recordings, fed event by event (no threads, no files)."""

import pytest

from supervisor.core.recording_rule import RecordingRule, Tally
from tests.core import published as ev


def feed(rule, *events, t=100.0):
    actions = []
    for kind, payload in events:
        rule, action = rule.after(kind, payload, t)
        actions.append(action)
    return rule, actions


# (events fed to a fresh rule, the actions it answers, the servers it then counts as up)
SEQUENCES = {
    "the first server starting begins": ([ev.server("clock", "STARTING")], ["begin"], {"clock"}),
    "nothing but a server starting begins": (
        [
            ev.output("clock", "hello"),
            ev.proc("clock", "fork"),
            ev.server("clock", "STOPPED"),
            ev.stop_everything("clock"),
        ],
        [None, None, None, None],
        set(),
    ),
    "it goes on while one server still runs": (
        [
            ev.server("clock", "STARTING"),
            ev.server("web", "STARTING"),
            ev.server("clock", "STOPPING"),
            ev.server("clock", "STOPPED"),
        ],
        ["begin", None, None, None],
        {"web"},
    ),
}


@pytest.mark.parametrize("events, actions, running", SEQUENCES.values(), ids=SEQUENCES)
def test_when_a_recording_begins(events, actions, running):
    rule, answered = feed(RecordingRule(), *events)
    assert answered == actions
    assert rule.running == running
    assert rule.recording == ("begin" in actions) and rule.empty_since is None


def test_all_stopped_waits_end_after_and_a_restart_meanwhile_cancels_the_end():
    rule, _ = feed(RecordingRule(), ev.server("clock", "STARTING"), ev.server("clock", "RUNNING"))
    rule, actions = feed(rule, ev.server("clock", "STOPPED"), t=200.0)
    assert actions == [None]
    assert rule.empty_since == 200.0
    assert not rule.expired(204.9, end_after=5.0)
    assert rule.expired(205.0, end_after=5.0)
    restarted, actions = feed(rule, ev.server("clock", "STARTING"), t=201.0)
    assert actions == [None]
    assert restarted.recording and restarted.empty_since is None
    assert not restarted.expired(1000.0, end_after=5.0)


def test_exited_and_fatal_count_as_stopped():
    rule, _ = feed(RecordingRule(), ev.server("clock", "STARTING"), ev.server("web", "STARTING"))
    rule, _ = feed(rule, ev.server("clock", "EXITED"), ev.server("web", "FATAL"), t=300.0)
    assert rule.running == frozenset() and rule.empty_since == 300.0


def test_stop_everything_ends_when_the_last_server_has_stopped():
    rule, _ = feed(RecordingRule(), ev.server("clock", "STARTING"), ev.server("web", "STARTING"))
    rule, actions = feed(
        rule,
        ev.server("clock", "STOPPING"),
        ev.server("web", "STOPPING"),
        ev.stop_everything("clock", "web"),
        ev.server("clock", "STOPPED"),
        ev.server("web", "STOPPED"),
    )
    assert actions == [None, None, None, None, "end"]
    assert not rule.recording


def test_stop_everything_after_all_stopped_ends_at_once():
    rule, _ = feed(RecordingRule(), ev.server("clock", "STARTING"), ev.server("clock", "STOPPED"))
    rule, actions = feed(rule, ev.stop_everything("clock"))
    assert actions == ["end"]


def test_a_single_server_stop_is_not_stop_everything():
    rule, _ = feed(RecordingRule(), ev.server("clock", "STARTING"), ev.server("web", "STARTING"))
    rule, actions = feed(rule, ev.timeline("clock", "stop", "clock stopped (exit code 0)"))
    assert actions == [None] and not rule.stopping_all


def test_after_a_recording_ends_the_next_start_begins_a_new_one():
    rule, _ = feed(RecordingRule(), ev.server("clock", "STARTING"), ev.server("clock", "STOPPED"))
    rule, _ = feed(rule, ev.stop_everything("clock"))
    rule, actions = feed(rule, ev.server("web", "STARTING"))
    assert actions == ["begin"]


def test_the_tally_counts_servers_forks_and_kills():
    tally = Tally()
    for kind, payload in (
        ev.server("forking_clock", "STARTING"),
        ev.server("forking_clock", "RUNNING"),
        ev.proc("forking_clock", "fork"),
        ev.proc("forking_clock", "fork"),
        ev.proc("forking_clock", "exit"),
        ev.timeline("forking_clock", "kill", "SIGKILL sent to PID 4"),
        ev.timeline("forking_clock", "fork", "forked PID 4"),
        ev.server("web", "STARTING"),
    ):
        tally.count(kind, payload)
    assert (tally.servers, tally.forks, tally.kills) == (["forking_clock", "web"], 2, 1)
