"""The side-by-side comparisons as plain data: which servers of the catalogue, with which
options, under what load, and what each side is meant to show.

Every side of a comparison gets the same load: `clients` real clients asking the time, at
once (or `stagger` seconds apart), against a handler that takes `seconds` (the option
named by `seconds_option`: the clock's work, the forking server's delay).
"""

import dataclasses

MAX_SECONDS = 5.0


@dataclasses.dataclass(frozen=True)
class Side:
    key: str
    label: str
    server: str  # a catalogue name
    says: str  # the one line under the side's label: what it is, in the lecture's words
    options: tuple = ()  # (name, value) pairs
    seconds_option: str | None = None

    def options_for(self, seconds):
        options = dict(self.options)
        if self.seconds_option:
            options[self.seconds_option] = seconds
        return options

    def describe(self):
        return {
            "key": self.key,
            "label": self.label,
            "server": self.server,
            "says": self.says,
            "options": dict(self.options),
            "seconds_option": self.seconds_option,
        }


@dataclasses.dataclass(frozen=True)
class Comparison:
    name: str
    title: str
    question: str  # what the room should see, in one sentence
    sides: tuple
    clients: int  # the default load
    seconds: float
    stagger: float = 0.0  # 0: every client at once
    shows: str = "time"  # time | after | transcript | cpu: what the page puts under each chart

    @property
    def takes_seconds(self):
        return any(side.seconds_option for side in self.sides)

    def describe(self):
        return {
            "name": self.name,
            "title": self.title,
            "question": self.question,
            "sides": [side.describe() for side in self.sides],
            "clients": self.clients,
            "seconds": self.seconds,
            "stagger": self.stagger,
            "shows": self.shows,
            "takes_seconds": self.takes_seconds,
        }


COMPARISONS = (
    Comparison(
        name="threads_processes",
        title="One at a time, threads, processes",
        question="N clients at once, each answer takes S seconds: one at a time needs N × S, "
        "threads and processes about S.",
        sides=(
            Side(
                "serial",
                "one at a time",
                "clock",
                "TCPServer + serve_forever(): the next client waits",
                seconds_option="work",
            ),
            Side(
                "threads",
                "threads",
                "clock",
                "ThreadingTCPServer: one process, a thread per client",
                (("threading", True),),
                "work",
            ),
            Side(
                "processes",
                "processes",
                "forking_clock",
                "fork(): a child process per client",
                (("reap", True),),
                "delay",
            ),
        ),
        clients=4,
        seconds=1.0,
    ),
    Comparison(
        name="once_forever",
        title="handle_request() against serve_forever()",
        question="Clients one after another: handle_request() serves the first and the program "
        "ends; serve_forever() keeps serving.",
        sides=(
            Side(
                "once",
                "handle_request()",
                "clock",
                "one request, then the program goes on (and ends)",
                (("once", True),),
            ),
            Side("forever", "serve_forever()", "clock", "a loop: request after request until Ctrl-C"),
        ),
        clients=3,
        seconds=0.0,
        stagger=0.5,
        shows="after",
    ),
    Comparison(
        name="transports",
        title="TCP, UDP, Unix stream, Unix datagram",
        question="The same 25-byte question four ways: with a connection or without, to a port or to a path.",
        sides=(
            Side("tcp", "TCP", "clock", "a connection (connect / accept) to a port"),
            Side("udp", "UDP", "clock_udp", "no connection: a datagram to a port"),
            Side("unix", "Unix stream", "clock_unix", "a connection (connect / accept) to a path"),
            Side(
                "unix_dgram",
                "Unix datagram",
                "clock_unix_dgram",
                "no connection: a datagram to a path; the client binds an address to be answered",
            ),
        ),
        clients=1,
        seconds=0.0,
        shows="transcript",
    ),
    Comparison(
        name="cpu",
        title="CPU-bound work: threads against processes",
        question="Each answer is S seconds of CPU work: the threads of one process take turns "
        "(the GIL), processes run on the machine's cores.",
        sides=(
            Side(
                "threads",
                "threads",
                "clock",
                "ThreadingTCPServer: the work in threads of one process",
                (("threading", True), ("busy", True)),
                "work",
            ),
            Side(
                "processes",
                "processes",
                "forking_clock",
                "fork(): the work in a child process each",
                (("busy", True), ("reap", True)),
                "delay",
            ),
        ),
        clients=4,
        seconds=1.0,
        shows="cpu",
    ),
)


def by_name():
    return {comparison.name: comparison for comparison in COMPARISONS}
