"""The live tree under every watch mechanism: forks, exits, zombies, peers and stats, none missed."""

import threading

import pytest

from tests.helpers import ask, connect, start_ready, wait_for

MECHANISMS = ["netlink", "procfs", "psutil"]


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_two_hundred_clients_at_once_none_missed(manager_factory, mechanism):
    manager, recorder = manager_factory(mechanism=mechanism)
    assert manager.mechanism == mechanism
    server = start_ready(manager, "forking_clock", {"delay": 0, "max_children": 300})
    answers = []
    lock = threading.Lock()

    def client():
        with connect(server, timeout=30) as sock:
            data = ask(sock)
        with lock:
            answers.append(data)

    threads = [threading.Thread(target=client) for _ in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == 200 and all(a.endswith(b"\n") for a in answers)

    def forked_in_console():
        return {int(line.split()[2]) for line in server.output.tail() if line.startswith("appending PID")}

    forked = wait_for(
        lambda: len(forked_in_console()) == 200 and forked_in_console(), what="200 forks in the console"
    )
    wait_for(
        lambda: {p["pid"] for p in recorder.of("proc", server="forking_clock", kind="fork")} >= forked,
        15,
        "200 fork events",
    )
    wait_for(
        lambda: (
            {p["pid"] for p in recorder.of("proc", server="forking_clock", kind="status", status="zombie")}
            >= forked
        ),
        15,
        "200 zombie events",
    )
    detail = manager.server_detail("forking_clock")
    assert detail["children"] == 200
    assert sum(p["status"] == "zombie" for p in detail["tree"]) == 200


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_fork_exit_and_peer_are_reported(manager_factory, mechanism):
    manager, recorder = manager_factory(mechanism=mechanism)
    server = start_ready(manager, "forking_clock", {"delay": 0, "reap": True})
    with connect(server) as sock:
        local = f"127.0.0.1:{sock.getsockname()[1]}"
        fork = wait_for(lambda: recorder.of("proc", server="forking_clock", kind="fork"), what="fork event")[
            0
        ]
        assert fork["peer"] == local and fork["ppid"] == server.pid
        assert ask(sock).endswith(b"\n")
    wait_for(lambda: recorder.of("proc", kind="exit", pid=fork["pid"]), what="exit event once reaped")


def test_stats_are_published(manager_factory):
    manager, recorder = manager_factory()
    server = start_ready(manager, "forking_clock", {"delay": 30})
    with connect(server):
        stats = wait_for(
            lambda: [s for s in recorder.of("stats", server="forking_clock") if len(s["procs"]) == 2],
            what="stats",
        )
        assert all(p["rss"] > 0 and p["cpu_percent"] >= 0 for p in stats[-1]["procs"])
