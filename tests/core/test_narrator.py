"""The narrator alone, fed facts on a clock of its own: when a moment is told, how a burst
folds, who is named as a child's killer, and the order of a child's life."""

import os

from supervisor.core.narrator import FOLD, HOLD, MAX_HOLD, Narrator

ROOT = os.getpid()  # a live "server": a child seen gone while it lives was reaped by it
GONE_ROOT = 4_000_000  # no such process: its children are gone with it
SERVER = "forking_clock"


class World:
    """A narrator, its clock and everything it told or published."""

    def __init__(self, root=ROOT):
        self.now = 1000.0
        self.root = root
        self.told = []
        self.published = []
        self.narrator = Narrator(
            lambda server, kind, text: self.told.append((kind, text)),
            lambda kind, payload: self.published.append((kind, payload)),
            lambda server: self.root,
            clock=lambda: self.now,
        )

    def later(self, seconds):
        self.now += seconds
        self.narrator.flush()
        return self

    def fork(self, pid, peer=None):
        self.narrator.on_proc({"server": SERVER, "kind": "fork", "pid": pid, "ppid": self.root, "peer": peer})

    def zombie(self, pid):
        self.narrator.on_proc({"server": SERVER, "kind": "status", "pid": pid, "status": "zombie"})

    def gone(self, pid):
        self.narrator.on_proc({"server": SERVER, "kind": "exit", "pid": pid, "status": "exited"})

    def line(self, pid, text):
        self.narrator.on_line(SERVER, pid, "stdout", text)

    def texts(self):
        return [text for _, text in self.told]


def test_a_moment_is_told_once_its_server_was_quiet_for_hold():
    world = World()
    world.fork(7086, "127.0.0.1:37320")
    assert world.later(HOLD / 2).told == []
    assert world.later(HOLD).told == [("fork", "forking_clock forked child 7086 to serve 127.0.0.1:37320")]
    assert world.later(HOLD).told == [("fork", "forking_clock forked child 7086 to serve 127.0.0.1:37320")]


def test_a_steady_stream_is_still_told_after_max_hold():
    world = World()
    steps = 0
    while world.now < 1000.0 + MAX_HOLD + 0.05:
        world.fork(7000 + steps)
        steps += 1
        world.later(HOLD / 2)
    assert world.told, "nothing told although the first fork waited longer than MAX_HOLD"
    assert all(kind == "fork" for kind, _ in world.told)


def test_a_burst_folds_into_one_line_and_a_few_stay_single():
    world = World()
    for pid in range(7000, 7000 + FOLD + 2):
        world.fork(pid)
    world.later(HOLD)
    assert world.told == [("fork", "forking_clock forked 6 children: 7000, 7001, 7002, 7003, 7004, 7005")]
    for pid in (8000, 8001, 8002):
        world.fork(pid)
    assert world.later(HOLD).texts()[1:] == [
        f"forking_clock forked child {pid}" for pid in (8000, 8001, 8002)
    ]


def test_fifty_children_gone_are_a_line_or_two_not_fifty():
    world = World()
    for pid in range(9000, 9050):
        world.fork(pid)
    world.later(HOLD)
    for pid in range(9000, 9050):
        world.gone(pid)
    world.later(HOLD)
    assert world.told[-1] == (
        "exit",
        "50 children exited and their parent reaped them at once (wait()): "
        "9000, 9001, 9002, 9003, 9004, 9005, 9006, 9007 and 42 more",
    )
    assert len(world.told) == 2


def test_the_kill_line_printed_around_the_death_names_the_server_as_the_killer():
    world = World()
    world.fork(7086)
    world.fork(7090)
    world.later(HOLD)
    world.line(ROOT, "ctrl c pressed, closing server")
    world.line(ROOT, "active processes : [7086, 7090]")
    world.gone(7086)  # the watcher saw this death before the console's kill line was read
    world.line(ROOT, "-> killing process 7086")
    world.line(ROOT, "-> killing process 7090")
    world.gone(7090)
    world.later(HOLD)
    assert world.told[2:] == [
        ("stop", "forking_clock caught Ctrl-C and runs kill_processes(): active processes : [7086, 7090]"),
        ("exit", "child 7086 killed by the server's kill_processes() (-> killing process 7086) and reaped"),
        ("exit", "child 7090 killed by the server's kill_processes() (-> killing process 7090) and reaped"),
    ]


def test_a_child_tells_its_life_in_order_and_a_zombie_reaped_at_once_is_told_once():
    world = World()
    world.fork(7086, "127.0.0.1:37320")
    world.line(7086, "client is blocked for ten seconds ...")
    world.later(HOLD)
    world.now += 10
    world.line(7086, "handling a client ...")
    world.line(7086, 'received "What is the time?        " from client')
    world.line(7086, "closing client socket, exiting child process")
    world.zombie(7086)
    world.later(HOLD)
    world.line(7090, "client is blocked for ten seconds ...")  # not a known child: not told
    world.later(HOLD)
    assert world.texts() == [
        "forking_clock forked child 7086 to serve 127.0.0.1:37320",
        "child 7086 is blocked for 10 seconds before it answers",
        "child 7086 is handling its client 127.0.0.1:37320",
        "child 7086 closes the client socket and exits",
        "child 7086 exited; nobody called wait(), so it is a zombie",
    ]
    world.fork(7094)
    world.zombie(7094)
    world.gone(7094)  # reaped within the hold (--reap): its end is told, not a zombie
    world.gone(7086)
    world.later(HOLD)
    assert world.texts()[5:] == [
        "forking_clock forked child 7094",
        "child 7094 exited and its parent reaped it at once (wait())",
        "zombie 7086 reaped by its parent (wait())",
    ]


def test_forkwatch_kills_are_told_in_the_lectures_words_and_the_zombies_they_leave():
    world = World()
    world.fork(7086)
    world.fork(7090)
    world.later(HOLD)
    world.narrator.forkwatch_killed(SERVER, [7086, 7090], "SIGKILL", skipped=1)
    assert world.told[2:] == [
        (
            "info",
            "forkwatch sent SIGKILL to 2 children of forking_clock from outside: 7086, 7090 "
            "(1 zombies skipped: they have exited already); the server's active_processes still lists them",
        ),
        ("kill", "-> killing process 7086 (by forkwatch, from outside)"),
        ("kill", "-> killing process 7090 (by forkwatch, from outside)"),
    ]
    world.zombie(7086)
    world.zombie(7090)
    world.later(HOLD)
    assert world.texts()[-2:] == [
        f"child {pid} was killed by forkwatch; nobody called wait(), so it is a zombie"
        for pid in (7086, 7090)
    ]


def test_stop_and_a_dead_server_are_named_and_the_end_tells_what_is_held():
    world = World()
    world.fork(7086)
    world.later(HOLD)
    world.narrator.on_server({"name": SERVER, "state": "STOPPING"})
    world.gone(7086)
    world.narrator.on_server({"name": SERVER, "state": "STOPPED"})  # no waiting: told before the end
    assert world.told[-1] == ("exit", "child 7086 ended by Stop")

    orphaned = World(root=GONE_ROOT)
    orphaned.fork(7090)
    orphaned.zombie(7090)
    orphaned.later(HOLD)
    orphaned.gone(7090)
    orphaned.narrator.on_server({"name": SERVER, "state": "EXITED"})
    assert orphaned.told[-1] == ("exit", "zombie 7090 reaped as forking_clock ended")


def test_the_drawing_gets_each_step_and_the_end_of_the_wait():
    world = World()
    world.narrator.client_connected(SERVER, "127.0.0.1:37320", 7100)
    world.fork(7086, "127.0.0.1:37320")
    world.line(7086, "client is blocked for 2.5 seconds ...")
    stories = [payload for kind, payload in world.published if kind == "story"]
    assert stories[-1] == {"server": SERVER, "pid": 7086, "step": "blocked", "until": 1002.5, "client": 7100}
    assert world.narrator.stories(SERVER) == [stories[-1]]
    world.line(7086, "handling a client ...")
    world.gone(7086)
    assert [payload["step"] for kind, payload in world.published if kind == "story"] == [
        "forked",
        "blocked",
        "serving",
        "gone",
    ]
    assert world.narrator.stories(SERVER) == []
    world.later(HOLD)
    assert world.texts()[0] == "forking_clock forked child 7086 to serve 127.0.0.1:37320 (fork client 7100)"
    assert "child 7086 is blocked for 2.5 seconds before it answers" in world.texts()


def test_a_line_read_before_its_fork_event_is_still_the_childs():
    world = World()
    world.line(7086, "client is blocked for 2 seconds ...")  # the console was faster than the watcher
    world.now += 0.01
    world.fork(7086)
    world.later(HOLD)
    assert world.texts() == [
        "forking_clock forked child 7086",
        "child 7086 is blocked for 2 seconds before it answers",
    ]
    assert world.narrator.stories(SERVER)[0]["until"] == 1002.0
