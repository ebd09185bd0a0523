"""The servers the dashboard knows: plain data, overridable by the config file.

Each entry names a lecture module, its default port (distinct, so all can run at once),
the options an instructor may set at start, its protocol, the kind of embedded client
that talks to it and, for a game, where its secret comes from. The clients themselves
(clock_client, fork_client) are not servers.
"""

import dataclasses
import importlib
import math
import os
import secrets

# The folder holding the lecture's `servers` package: the servers run from there.
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Tasks (processes and threads) a lecture server may have where cgroups cap them: the
# forking server's 2,000 children at most, with room to spare.
LECTURE_PIDS_MAX = 4096


class OptionError(ValueError):
    """An option an instructor gave at start is unknown or out of range."""


@dataclasses.dataclass(frozen=True)
class Option:
    name: str
    kind: type  # bool, int or float
    default: object
    flag: str
    help: str
    low: float | None = None
    high: float | None = None
    needs: str | None = None  # a number option that must be above 0 when this one is on
    ends: str | None = None  # a bool option that makes the program end: why, in words

    def parse(self, value):
        if self.kind is bool:
            if not isinstance(value, bool):
                raise OptionError(f"option {self.name} must be true or false")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise OptionError(f"option {self.name} must be a number")
        if self.kind is int and value != int(value):
            raise OptionError(f"option {self.name} must be a whole number")
        if (
            not math.isfinite(value)
            or (self.low is not None and value < self.low)
            or (self.high is not None and value > self.high)
        ):
            raise OptionError(f"option {self.name} must be between {self.low:g} and {self.high:g}")
        return self.kind(value)

    def as_args(self, value):
        if self.kind is bool:
            return [self.flag] if value else []
        return [self.flag, f"{value:g}" if self.kind is float else str(value)]

    def describe(self):
        return {
            "name": self.name,
            "type": self.kind.__name__,
            "default": self.default,
            "min": self.low,
            "max": self.high,
            "help": self.help,
        }


@dataclasses.dataclass(frozen=True)
class Secret:
    """Where a game's secret comes from: a whole number from `low` to `high`, or one of the
    words a lecture module lists (`words` = "module:NAME"). Picked with the OS's randomness
    (students must not predict it); passed to the server by environment, never in argv."""

    low: int = 1
    high: int = 100
    words: str | None = None

    @property
    def kind(self):
        """How a guess of it is read: "word" or "number" (the recordings hide it so)."""
        return "word" if self.words else "number"

    def pick(self):
        if self.words:
            module, name = self.words.split(":")
            return secrets.choice(getattr(importlib.import_module(module), name))
        return str(self.low + secrets.randbelow(self.high - self.low + 1))


@dataclasses.dataclass(frozen=True)
class ServerSpec:
    name: str
    title: str
    module: str
    port: int | None  # None: no TCP/UDP port (Unix socket or none)
    protocol: str  # tcp | udp | unix | unix_dgram | http | none
    client: str | None  # the embedded client that talks to it
    description: str
    args: tuple = ()
    options: tuple = ()
    secret: Secret | None = None
    reads_stdin: bool = False
    unix_socket: str | None = None  # file name in the runtime folder
    quits_on: tuple | None = None  # (the input line that ends it, why in words)
    package: str = "servers"  # the package holding `module`
    forks: bool = False  # it can have child processes (kill_processes() applies)
    pids_max: int = LECTURE_PIDS_MAX  # its cgroup's pids.max, where cgroups are in use
    exercise: str | None = None  # the exercise whose checks it must pass (checks/), if any
    command: tuple | None = None  # a student's program: its command line, with {port} (students.py)
    limits: object = None  # a student's program: what it may use (proc.limits.Limits)
    check_options: tuple = ()  # (name, seconds) pairs the checks must know: swap's timeout…

    @property
    def student(self):
        """A student's program, added by the instructor's command line or config."""
        return self.command is not None

    def option(self, name):
        return next((o for o in self.options if o.name == name), None)

    def parse_options(self, given):
        """Validated {name: value} for every option, defaults filled in."""
        given = given or {}
        if not isinstance(given, dict):
            raise OptionError("options must be an object of name: value")
        unknown = sorted(set(given) - {o.name for o in self.options})
        if unknown:
            known = ", ".join(o.name for o in self.options) or "none"
            raise OptionError(f"{self.name} has no option {unknown[0]!r} (its options: {known})")
        parsed = {o.name: o.parse(given[o.name]) if o.name in given else o.default for o in self.options}
        for option in self.options:
            if option.needs and parsed[option.name] and not parsed[option.needs]:
                raise OptionError(f"option {option.name} needs {option.needs} above 0")
        return parsed

    def describe(self):
        return {
            "name": self.name,
            "title": self.title,
            "student": self.student,
            "exercise": self.exercise,
            "command": list(self.command) if self.student else None,
            "module": self.module,
            "port": self.port,
            "protocol": self.protocol,
            "client": self.client,
            "description": self.description,
            "options": [o.describe() for o in self.options],
            "reads_stdin": self.reads_stdin,
            "has_secret": self.secret is not None,
            "forks": self.forks,
        }


WORK = Option("work", float, 0.0, "--work", "seconds each answer takes (the handler waits, or works)", 0, 30)
BUSY = Option(
    "busy", bool, False, "--busy", "spend that time as CPU work (threads share the GIL)", needs="work"
)

# In the lecture's order: TCP, UDP, Unix, fork.py, the forking server, the web server, the
# exercises. The page and the API list the servers in this order.
CATALOG = (
    ServerSpec(
        name="clock",
        title="Clock server (TCP)",
        module="clock",
        port=12091,
        protocol="tcp",
        client="clock",
        description="TCPServer + StreamRequestHandler: a 25-byte question, a ctime() answer.",
        options=(
            Option(
                "once",
                bool,
                False,
                "--once",
                "handle_request(): serve one client, then exit",
                ends="served one request, as handle_request() does",
            ),
            Option("threading", bool, False, "--threading", "a thread per client"),
            WORK,
            BUSY,
        ),
    ),
    ServerSpec(
        name="clock_udp",
        title="Clock server (UDP)",
        module="clock",
        port=12093,
        protocol="udp",
        client="clock",
        description="UDPServer + DatagramRequestHandler: one datagram asks, one answers.",
        args=("--udp",),
    ),
    ServerSpec(
        name="clock_unix",
        title="Clock server (Unix socket)",
        module="clock",
        port=None,
        protocol="unix",
        client="clock",
        description="UnixStreamServer: the same protocol over a socket file.",
        unix_socket="clock.sock",
    ),
    ServerSpec(
        name="clock_unix_dgram",
        title="Clock server (Unix datagram)",
        module="clock",
        port=None,
        protocol="unix_dgram",
        client="clock",
        description="UnixDatagramServer: one datagram to a socket file asks, one answers.",
        args=("--udp",),
        unix_socket="clock-dgram.sock",
    ),
    ServerSpec(
        name="fork_demo",
        title="fork() demo",
        module="fork_demo",
        port=None,
        protocol="none",
        client=None,
        description="fork.py: forks a child that says hello, then again on each line; q quits.",
        options=(Option("reap", bool, False, "--reap", "reap exited children"),),
        reads_stdin=True,
        quits_on=("q", "quit on q, as fork.py does"),
        forks=True,
    ),
    ServerSpec(
        name="forking_clock",
        title="Forking clock server",
        module="forking_clock",
        port=12092,
        protocol="tcp",
        client="fork",
        description="fork() per client, active_processes, kill_processes(). Zombies unless reaping is on.",
        options=(
            Option("delay", float, 10.0, "--delay", "seconds a child waits before answering", 0, 120),
            Option("busy", bool, False, "--busy", "spend the delay as CPU work (each child on a core)"),
            Option("reap", bool, False, "--reap", "reap exited children (off: they stay zombies)"),
            Option(
                "max_children",
                int,
                100,
                "--max-children",
                "children not yet reaped at most, zombies included; past it a client gets `server busy`",
                1,
                2000,
            ),
        ),
        forks=True,
    ),
    ServerSpec(
        name="web",
        title="Our web server",
        module="web",
        port=8000,
        protocol="http",
        client="web",
        description="BaseHTTPServer: GET / says hello client, any other path is a real 404.",
    ),
    ServerSpec(
        name="swap",
        title="Swap server (exercise 1)",
        module="swap",
        port=12094,
        protocol="tcp",
        client="swap",
        description="Two clients send a line each and receive each other's line.",
        options=(
            Option("timeout", float, 60.0, "--timeout", "seconds a client waits for a partner", 1, 600),
        ),
    ),
    ServerSpec(
        name="secret_number",
        title="Secret number (exercise 2)",
        module="secret_number",
        port=12095,
        protocol="tcp",
        client="number",
        description="Guess the number: wrong / right / secret found.",
        options=(
            Option("forking", bool, False, "--forking", "a process per client (shared memory for the state)"),
        ),
        secret=Secret(1, 100),
        forks=True,
    ),
    ServerSpec(
        name="guess_word",
        title="Guess the word (exercise 3)",
        module="guess_word",
        port=8081,
        protocol="http",
        client="word",
        description="A web server where the URL path guesses a secret word.",
        secret=Secret(words="servers.guess_word:WORDS"),
    ),
)
# The lecture's servers that are the model answers of an exercise's checks.
LECTURE_EXERCISES = {
    "clock": "clock",
    "forking_clock": "forking_clock",
    "swap": "swap",
    "secret_number": "secret_number",
    "guess_word": "guess_word",
}


def build_catalog(overrides=None):
    """The catalogue with per-server overrides from the config file, e.g.
    {"clock": {"port": 13091}, "forking_clock": {"title": "…"}}."""
    overrides = overrides or {}
    names = {spec.name for spec in CATALOG}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"the config names an unknown server {unknown[0]!r}")
    catalog = {}
    for spec in CATALOG:
        changes = dict(overrides.get(spec.name, {}))
        bad = sorted(set(changes) - {"port", "title", "description"})
        if bad:
            raise ValueError(f"the config cannot set {bad[0]!r} of server {spec.name}")
        if "port" in changes:
            port = changes["port"]
            if (
                spec.port is None
                or not isinstance(port, int)
                or isinstance(port, bool)
                or not 0 <= port <= 65535
            ):
                raise ValueError(f"server {spec.name}: port must be a number from 0 to 65535")
        changes.setdefault("exercise", LECTURE_EXERCISES.get(spec.name))
        catalog[spec.name] = dataclasses.replace(spec, **changes)
    return catalog
