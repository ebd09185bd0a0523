"""Every child's story with real servers and forks: console lines known by the PID that
printed them, the forking server's children and fork.py's told from fork to reaping, bursts
folded, and the looping fork clients paired with the children that serve them."""

import re

from supervisor.core.fork_clients import ForkClients
from tests.helpers import ask, connect, start_ready, wait_for, wait_state


def told(manager, server):
    return [e["text"] for e in manager.events_after(0)["events"] if e["server"] == server]


def wait_told(manager, server, text, what=None):
    return wait_for(lambda: text in told(manager, server), 10.0, what or repr(text))


def published(recorder, server):
    """(pid, text) of every console line published live for a server."""
    return [
        (pid, text)
        for batch in recorder.of("output", server=server)
        for pid, text in zip(batch["pids"], batch["lines"], strict=True)
    ]


def test_each_console_line_carries_the_pid_that_printed_it(manager_factory):
    manager, recorder = manager_factory()
    server = start_ready(manager, "forking_clock", {"delay": 0})
    with connect(server) as sock:
        ask(sock)
        child = wait_for(lambda: manager.watcher.descendants("forking_clock"), what="the child")[0][0]
    lines = wait_for(
        lambda: (
            (found := published(recorder, "forking_clock"))
            and (child, "closing client socket, exiting child process") in found
            and found
        ),
        what="the child's last line published",
    )
    assert (server.pid, "server is listening to " + str(server.port)) in lines
    assert (server.pid, f"appending PID {child}") in lines
    for text in (
        "client is blocked for 0 seconds ...",
        "handling a client ...",
        "closing client socket, exiting child process",
    ):
        assert (child, text) in lines


def test_the_forking_servers_children_tell_their_whole_story(manager, request):
    server = start_ready(manager, "forking_clock", {"delay": 0.3})
    socks = [connect(server) for _ in range(2)]
    request.addfinalizer(lambda: [sock.close() for sock in socks])
    peers = [f"127.0.0.1:{sock.getsockname()[1]}" for sock in socks]
    for sock in socks:
        ask(sock)
        sock.close()  # the child answers, then reads EOF and closes
    children = {}
    for peer in peers:
        line = wait_for(
            lambda peer=peer: next(
                (t for t in told(manager, "forking_clock") if t.endswith(f"to serve {peer}")), None
            ),
            what=f"the fork for {peer}",
        )
        children[peer] = int(re.match(r"forking_clock forked child (\d+) ", line).group(1))
    for peer, pid in children.items():
        story = [
            f"forking_clock forked child {pid} to serve {peer}",
            f"child {pid} is blocked for 0.3 seconds before it answers",
            f"child {pid} is handling its client {peer}",
            f"child {pid} closes the client socket and exits",
            f"child {pid} exited; nobody called wait(), so it is a zombie",
        ]
        wait_told(manager, "forking_clock", story[-1])
        texts = told(manager, "forking_clock")
        assert [texts.index(line) for line in story] == sorted(texts.index(line) for line in story)
    manager.stop("forking_clock")
    wait_state(manager, "forking_clock", "STOPPED")
    texts = told(manager, "forking_clock")
    for pid in children.values():
        assert f"zombie {pid} reaped by kill_processes()" in texts  # SIGTERM: the server's own shutdown
    assert "forking_clock caught SIGTERM and runs kill_processes(): active processes : [" in "\n".join(texts)


def test_fork_demo_children_tell_their_story(manager):
    server = start_ready(manager, "fork_demo")
    first = wait_for(lambda: manager.watcher.descendants("fork_demo"), what="the first child")[0][0]
    wait_told(manager, "fork_demo", f"child {first} exited; nobody called wait(), so it is a zombie")
    texts = told(manager, "fork_demo")
    assert texts.index(f"fork_demo forked child {first}") < texts.index(f"child {first} says hello and exits")
    manager.send_stdin("fork_demo", "q")
    wait_state(manager, "fork_demo", "EXITED")
    assert any(
        text in told(manager, "fork_demo")
        for text in (
            f"zombie {first} reaped by its parent (wait())",
            f"zombie {first} reaped as fork_demo ended",
        )
    )
    assert told(manager, "fork_demo")[-1] == "fork_demo finished: quit on q, as fork.py does"
    assert server.exit_class.value == "finished"


def test_a_burst_of_twenty_clients_is_told_in_a_few_lines(manager):
    server = start_ready(manager, "forking_clock", {"delay": 0.5, "reap": True})
    socks = [connect(server) for _ in range(20)]
    for sock in socks:
        sock.close()

    def forks_told():
        """Forks told, folded or not; a child gone before it could be read is told as such."""
        counted = 0
        for text in told(manager, "forking_clock"):
            folded = re.match(r"forking_clock forked (\d+) children: |(\d+) children came and went ", text)
            if folded:
                counted += int(folded.group(1) or folded.group(2))
            elif text.startswith("forking_clock forked child ") or " came and went " in text:
                counted += 1
        return counted

    wait_for(lambda: forks_told() == 20, 10.0, "every fork told")
    fork_lines = [t for t in told(manager, "forking_clock") if t.startswith("forking_clock forked")]
    assert len(fork_lines) < 20 and any(re.match(r"forking_clock forked \d+ children", t) for t in fork_lines)


def test_fork_clients_are_heard_and_paired_with_the_children_that_serve_them(manager_factory):
    manager, recorder = manager_factory()
    clients = ForkClients(manager)
    try:
        server = start_ready(manager, "forking_clock", {"delay": 0.2, "reap": True})
        clients.spawn("forking_clock", 2)
        pairs = wait_for(
            lambda: (
                (found := [c for b in clients.describe() for c in b["clients"] if c["address"]])
                and len(found) == 2
                and found
            ),
            what="both clients connected",
        )
        for client in pairs:
            fork = wait_for(
                lambda client=client: next(
                    (
                        t
                        for t in told(manager, "forking_clock")
                        if t.endswith(f"(fork client {client['pid']})")
                    ),
                    None,
                ),
                what=f"the fork serving client {client['pid']}",
            )
            assert f"to serve {client['address']} (fork client {client['pid']})" in fork
            child = int(fork.split()[3])
            assert any(
                p.pid == child and p.peer == client["address"]
                for p in manager.watcher.snapshot("forking_clock")
            )
        heard = wait_for(
            lambda: [(o["pid"], o["lines"][0]) for o in recorder.of("client_output", server="forking_clock")],
            what="the clients' own lines",
        )
        for client in pairs:
            assert (client["pid"], "client is connected") in heard
        assert {line["text"] for line in clients.lines()["forking_clock"]} >= {"client is connected"}
        assert server.state.name == "RUNNING"
    finally:
        clients.stop_all()
