"""The side-by-side comparisons, run for real: the servers restarted with each side's
options, real clients on loopback, the shapes measured — one at a time takes N × S,
threads and processes about S; handle_request() serves one client and the program ends;
the four transports differ in connecting and in their address; CPU work in threads
shares one core while processes use the free ones."""

import pytest

from supervisor.core.comparison_run import Comparisons
from supervisor.core.process import CommandError
from tests.helpers import wait_for

N, S = 3, 0.5


@pytest.fixture
def comparisons(manager_factory):
    manager, recorder = manager_factory()
    made = Comparisons(manager)
    yield made, manager, recorder
    assert made.wait(60), "a comparison was still running"


def run(comparisons, name, **load):
    made, manager, _ = comparisons
    made.start(name, **load)
    assert made.wait(90), f"{name} did not end"
    result = made.last_run()
    assert result["state"] == "done", result["error"]
    return {side["key"]: side for side in result["sides"]}


def answered_at(side):
    return sorted(client["answered"] for client in side["clients"])


def test_one_at_a_time_takes_n_times_s_threads_and_processes_about_s(comparisons):
    sides = run(comparisons, "threads_processes", clients=N, seconds=S)
    serial, threads, processes = sides["serial"], sides["threads"], sides["processes"]
    assert all(side["answered"] == N for side in sides.values())
    # one at a time: a staircase, the k-th answer after about k × S
    for k, at in enumerate(answered_at(serial), 1):
        assert k * S * 0.95 <= at <= k * S + 0.6, answered_at(serial)
    assert N * S * 0.95 <= serial["total"] <= N * S + 0.8
    for side in (threads, processes):
        assert S * 0.95 <= side["total"] <= S + 0.8, (side["key"], side["total"])
        assert side["total"] < serial["total"] / 2
    # what each side had: one process without threads, one process with a thread per
    # client (a process tree hides them), a child process per client
    assert (serial["peak_processes"], serial["peak_threads"]) == (1, 1)
    assert threads["peak_processes"] == 1 and threads["peak_threads"] == N + 1
    assert len(threads["processes"][0]["threads"]) == N + 1
    assert processes["peak_processes"] == N + 1
    assert sum(not p["root"] for p in processes["processes"]) == N


def test_handle_request_serves_one_client_and_the_program_ends(comparisons):
    _, manager, _ = comparisons
    sides = run(comparisons, "once_forever", clients=3)
    once, forever = sides["once"], sides["forever"]
    assert [c["outcome"] for c in sorted(once["clients"], key=lambda c: c["index"])] == [
        "answered",
        "refused",
        "refused",
    ]
    assert once["clients"][1]["answer"].startswith("connection refused: nobody listens on 127.0.0.1:")
    assert once["after"] == {"state": "EXITED", "exit_code": 0}
    assert forever["answered"] == 3 and forever["after"] == {"state": "RUNNING", "exit_code": None}
    assert manager.servers["clock"].state.name in ("STOPPING", "STOPPED")  # stopped when done


def test_four_transports_answer_the_same_question_differently(comparisons):
    sides = run(comparisons, "transports")
    for key, side in sides.items():
        assert side["answered"] == 1, key
        dirs = [step["dir"] for step in side["transcript"]]
        assert ("connect" in dirs) == (key in ("tcp", "unix")), (key, dirs)
        assert dirs[-2:] == ["sent", "received"]
    assert sides["tcp"]["address"].startswith("127.0.0.1:") and sides["udp"]["address"].startswith(
        "127.0.0.1:"
    )
    assert sides["unix"]["address"].endswith("clock.sock")
    assert sides["unix_dgram"]["address"].endswith("clock-dgram.sock")
    assert any(step["text"].startswith("bind() to") for step in sides["unix_dgram"]["transcript"])


def test_cpu_work_in_threads_takes_turns_processes_use_the_free_cores(comparisons):
    clients, seconds = 2, 0.5
    sides = run(comparisons, "cpu", clients=clients, seconds=seconds)
    threads, processes = sides["threads"], sides["processes"]
    work = clients * seconds
    # threads: one process did all the work, so it needed at least the whole of it
    (server,) = threads["processes"]
    assert server["cpu_seconds"] >= work * 0.85
    assert threads["total"] >= work * 0.9
    assert sum(t["cpu_seconds"] for t in server["threads"] if not t["main"]) >= work * 0.85
    # processes: each child did its own share...
    children = [p for p in processes["processes"] if not p["root"]]
    assert len(children) == clients
    assert all(seconds * 0.85 <= child["cpu_seconds"] <= seconds + 0.3 for child in children), children
    # ...side by side, as far as the machine had cores free: what else kept them busy
    # is measured during the run (other programs share this machine's cores)
    free = max(0.25, min(clients, processes["cores"] - processes["others_busy"]))
    assert processes["total"] <= work / free * 1.3 + 0.35, (processes["total"], free)


def test_one_run_at_a_time_and_bad_loads_are_refused(comparisons):
    made, _, _ = comparisons
    with pytest.raises(CommandError, match="no comparison named 'races'") as caught:
        made.start("races")
    assert caught.value.status == 404
    for load, words in [
        ({"clients": 0}, "clients must be a whole number from 1 to 8"),
        ({"clients": 9}, "from 1 to 8"),
        ({"clients": True}, "clients must be"),
        ({"seconds": -1}, "seconds must be a number from 0 to 5"),
        ({"seconds": float("nan")}, "seconds must be"),
    ]:
        with pytest.raises(CommandError, match=words):
            made.start("threads_processes", **load)
    with pytest.raises(CommandError, match="takes no seconds"):
        made.start("transports", seconds=1)
    made.start("threads_processes", clients=2, seconds=0.2)
    with pytest.raises(CommandError, match="a comparison is running already") as caught:
        made.start("transports")
    assert caught.value.status == 409


def test_stop_everything_cancels_a_run(comparisons):
    made, manager, recorder = comparisons
    made.start("threads_processes", clients=2, seconds=2)
    # once the first side asks, everything is stopped
    wait_for(lambda: made.last_run()["sides"][0]["state"] == "asking", 15.0, "the first side asking")
    manager.stop_all()
    assert made.wait(30)
    result = made.last_run()
    assert result["state"] == "failed" and "cancelled" in result["error"], result["error"]
    assert [s["state"] for s in result["sides"]][1:] == ["skipped", "skipped"]
    assert any(e["kind"] == "compare" and "cancelled" in e["text"] for e in manager.events_after(0)["events"])
    assert recorder.of("compare")[-1]["state"] == "failed"
