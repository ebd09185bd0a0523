"""The state machine alone, with a fake process world: every transition, allowed or not."""

import pytest

from supervisor.core import states
from supervisor.core.process import CommandError, ManagedServer
from supervisor.core.states import ALLOWED_FROM, ServerState

S = ServerState


class Untouched:
    """The watcher and the guard: no test here starts or stops a process, so neither is used."""


def make_server(spec_name="clock"):
    from supervisor.core.catalog import build_catalog

    published = []
    server = ManagedServer(
        build_catalog()[spec_name],
        lambda kind, payload: published.append((kind, payload)),
        Untouched(),
        Untouched(),
        {},
    )
    return server, published


# The transitions, written out here and not read from the code: a change to the table in
# states.py must be made in both places, on purpose. Each line: the states it may come from
# -> the state.
TABLE = """
STOPPED EXITED FATAL BACKOFF -> STARTING
STARTING                     -> RUNNING
EXITED                       -> BACKOFF
STARTING RUNNING             -> STOPPING
STOPPING BACKOFF             -> STOPPED
RUNNING                      -> EXITED
STARTING RUNNING STOPPING BACKOFF EXITED -> FATAL
"""
# (FATAL from RUNNING or STOPPING: a process of its tree survived SIGKILL.)
PINNED = {
    (S[source], S[target.strip()])
    for line in TABLE.strip().splitlines()
    for sources, target in [line.split("->")]
    for source in sources.split()
}


def test_the_table_is_the_pinned_one():
    assert len(PINNED) == 16
    assert {(source, target) for target, sources in ALLOWED_FROM.items() for source in sources} == PINNED


def test_every_state_can_be_entered_and_none_loops_to_itself():
    assert {target for _, target in PINNED} == set(S)
    assert all(source != target for source, target in PINNED)


@pytest.mark.parametrize("target", list(S))
@pytest.mark.parametrize("current", list(S))
def test_change_state_follows_the_table(current, target):
    server, published = make_server()
    server.state = current
    changed = server._change_state(target, reason="why")
    allowed = (current, target) in PINNED
    assert changed is allowed
    assert server.state is (target if allowed else current)
    events = [p for k, p in published if k == "server"]
    if allowed:
        assert len(events) == 1 and events[0]["state"] == target.name and events[0]["reason"] == "why"
    else:
        assert events == []


def test_groups_are_consistent():
    assert states.STARTABLE_STATES.isdisjoint(states.STOPPABLE_STATES)
    assert states.STOPPED_STATES == {S.STOPPED, S.EXITED, S.FATAL}
    assert S.STOPPING in states.SIGNALLABLE_STATES and S.STOPPING not in states.STOPPABLE_STATES


@pytest.mark.parametrize("state", [S.STARTING, S.RUNNING])
def test_start_from_running_states_is_refused(state):
    server, _ = make_server()
    server.state = state
    with pytest.raises(CommandError, match="already"):
        server.start()


def test_start_while_stopping_is_refused():
    server, _ = make_server()
    server.state = S.STOPPING
    with pytest.raises(CommandError, match="is stopping"):
        server.start()


def test_stop_while_stopping_is_refused():
    server, _ = make_server()
    server.state = S.STOPPING
    with pytest.raises(CommandError, match="already stopping"):
        server.stop()


@pytest.mark.parametrize("state", [S.STOPPED, S.EXITED, S.FATAL])
def test_stop_from_stopped_states_is_refused(state):
    server, _ = make_server()
    server.state = state
    with pytest.raises(CommandError, match="is not running"):
        server.stop()


def test_stop_from_backoff_goes_straight_to_stopped():
    server, published = make_server()
    server.state = S.BACKOFF
    server.stop()
    assert server.state is S.STOPPED
    assert published[-1][1]["state"] == "STOPPED"


def test_unknown_option_is_refused_before_anything_starts():
    from supervisor.core.catalog import OptionError

    server, published = make_server("forking_clock")
    with pytest.raises(OptionError, match="no option 'colour'"):
        server.start({"colour": "red"})
    assert server.state is S.STOPPED and published == []
