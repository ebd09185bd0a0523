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
# states.py must be made in both places, on purpose.
PINNED = {
    (S.STOPPED, S.STARTING),
    (S.EXITED, S.STARTING),
    (S.FATAL, S.STARTING),
    (S.BACKOFF, S.STARTING),
    (S.STARTING, S.RUNNING),
    (S.EXITED, S.BACKOFF),
    (S.STARTING, S.STOPPING),
    (S.RUNNING, S.STOPPING),
    (S.STOPPING, S.STOPPED),
    (S.BACKOFF, S.STOPPED),
    (S.RUNNING, S.EXITED),
    (S.STARTING, S.FATAL),
    (S.RUNNING, S.FATAL),  # a process of its tree survived SIGKILL after it exited
    (S.STOPPING, S.FATAL),  # a process of its tree survived the stop's SIGKILL
    (S.BACKOFF, S.FATAL),
    (S.EXITED, S.FATAL),
}


def test_the_table_is_the_pinned_one():
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
