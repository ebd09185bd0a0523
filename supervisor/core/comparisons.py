"""The side-by-side comparisons as plain data: which servers of the catalogue, with which
options, under what load, and what each side is meant to show; and the one made of two
students' servers the instructor picks (`students_comparison`).

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
    shows: str = "time"  # time | after | transcript | cpu | students: what the page puts under each chart
    choices: tuple = ()  # students: (name, title, exercise) of each server the sides may be

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
            "choices": [{"name": n, "title": t, "exercise": e} for n, t, e in self.choices],
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


STUDENTS = "students"


def by_name():
    return {comparison.name: comparison for comparison in COMPARISONS}


def students_comparison(catalog, names=None):
    """Two students' servers under the same load, one after the other: `names` picks the
    two (default: the first two that solve one exercise). None when the catalogue has no
    such two; ValueError, with a sentence, for two that cannot be compared."""
    students = [spec for spec in catalog.values() if spec.student]
    if names is None:
        pair = next(
            ((a, b) for i, a in enumerate(students) for b in students[i + 1 :] if a.exercise == b.exercise),
            None,
        )
        if pair is None:
            return None
    else:
        pair = _pair(catalog, names)
    return Comparison(
        name=STUDENTS,
        title=f"{pair[0].title} against {pair[1].title}",
        question="Two students' servers under the same load, one after the other: when each client "
        "got its answer, the children each had, the zombies it left, the errors.",
        sides=tuple(Side(spec.name, spec.title, spec.name, spec.description) for spec in pair),
        clients=4,
        seconds=0.0,
        shows="students",
        choices=tuple((spec.name, spec.title, spec.exercise) for spec in students),
    )


def _pair(catalog, names):
    if not isinstance(names, list | tuple) or len(names) != 2 or not all(isinstance(n, str) for n in names):
        raise ValueError("servers must be the names of two students' servers")
    for name in names:
        if name not in catalog:
            raise LookupError(f"there is no server named {name[:60]!r}")
        if not catalog[name].student:
            raise ValueError(f"{name} is one of the lecture's servers; compare two students' servers")
    first, second = (catalog[name] for name in names)
    if first.name == second.name:
        raise ValueError(f"{first.name} against itself compares nothing; pick two servers")
    if first.exercise != second.exercise:
        raise ValueError(
            f"{first.name} solves {first.exercise or 'no exercise'} and {second.name} "
            f"{second.exercise or 'no exercise'}: the same load needs the same exercise"
        )
    return first, second
