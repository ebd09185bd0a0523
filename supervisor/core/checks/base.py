"""What a check is and how one runs: a rule in words, real clients with a transcript, a
pass or a fail, and for a fail the fault named in words.

A check is a function of a `Trial`; it raises `Fault("words")` when the server breaks
the rule. `run_exercise` runs an exercise's checks in order against servers it gets from
`fresh_target()`: a new server for the first check, for a check that needs one nobody
has talked to, and after a failed check (its state may be spoiled).
"""

import dataclasses
import re
from collections.abc import Callable

from supervisor.core.checks.client import Client, Transcript, shown_bytes

ANSWER_TIMEOUT = 5.0  # seconds a correct server needs at most to answer on this machine
SHOWN_AT_MOST = 80  # bytes of an unexpected answer quoted in a fault


class Fault(Exception):
    """The server broke a check's rule; `words` say what is wrong."""

    def __init__(self, words):
        super().__init__(words)
        self.words = words


@dataclasses.dataclass(frozen=True)
class Option:
    """A number the check must know about the server (its timeout, its delay)."""

    name: str
    default: float
    words: str


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    rule: str
    run: Callable
    fresh: bool = False  # needs a server nobody has talked to yet
    needs_tree: bool = False  # reads the server's processes (only a runner can tell)


@dataclasses.dataclass(frozen=True)
class Exercise:
    name: str
    title: str
    checks: tuple
    options: tuple = ()
    new_secret: Callable | None = None  # for the games: a secret the checks will guess
    secret_form: str = ""  # a regular expression a given secret must match
    secret_words: str = ""  # that form in words, for the error

    def secret_value(self, given=None):
        """The secret for a run: `given` (checked against the form), else a new one."""
        if self.new_secret is None:
            if given is not None:
                raise ValueError(f"{self.name} has no secret")
            return None
        if given is None:
            return self.new_secret()
        if not re.fullmatch(self.secret_form, given):
            raise ValueError(f"the secret of {self.name} must be {self.secret_words}, not {given!r}")
        return given

    def option_values(self, given=None):
        """The options' values: defaults, overridden by `given` {name: text or number}."""
        values = {option.name: option.default for option in self.options}
        for name, value in (given or {}).items():
            if name not in values:
                known = ", ".join(values) or "none"
                raise ValueError(f"{self.name} has no option {name!r} (its options: {known})")
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"option {name} must be a number of seconds, not {value!r}") from None
            if not 0 <= number <= 3600:
                raise ValueError(f"option {name} must be between 0 and 3600 seconds")
            values[name] = number
        return values


@dataclasses.dataclass(frozen=True)
class Target:
    """A server to check: where it listens, what the checks must know about it, and when a
    runner started it, its process tree and a way to ask whether (and how) it exited."""

    host: str
    port: int
    options: dict
    secret: str | None = None
    tree: object = None  # a ProgramTree, or None
    exited: Callable = lambda: None  # None while it runs, else a sentence ("exited with code 1")


@dataclasses.dataclass
class CheckResult:
    name: str
    rule: str
    passed: bool | None  # None: not run
    fault: str | None
    transcript: list
    ms: float

    def as_dict(self):
        return dataclasses.asdict(self)


class Trial:
    """One run of one check: the target, the clients it opened and their transcript."""

    def __init__(self, target):
        self.target = target
        self.transcript = Transcript()
        self.clients = []

    @property
    def secret(self):
        return self.target.secret

    @property
    def tree(self):
        return self.target.tree

    def option(self, name):
        return self.target.options[name]

    def client(self, who):
        client = Client(self.transcript, who, self.target.host, self.target.port)
        self.clients.append(client)
        return client

    def note(self, text, who=""):
        self.transcript.note(text, who)

    def close(self):
        for client in self.clients:
            client.close()


def run_check(check, target):
    """Run one check; a broken connection is a fail like a broken rule."""
    trial = Trial(target)
    fault = None
    try:
        check.run(trial)
    except Fault as exc:
        fault = exc.words
    except OSError as exc:
        fault = f"the connection failed: {exc.strerror or exc}"
    finally:
        trial.close()
    if fault is not None:
        died = target.exited()
        if died:
            trial.note(f"the server {died}")
            fault += f" (the server {died})"
    return CheckResult(
        check.name,
        check.rule,
        fault is None,
        fault,
        trial.transcript.steps,
        round(trial.transcript.elapsed() * 1000, 1),
    )


def not_run(check, why):
    return CheckResult(check.name, check.rule, None, why, [], 0.0)


def run_exercise(exercise, fresh_target, on_result=None):
    """Run every check of `exercise`; returns their results in order. `fresh_target()`
    returns a Target for a server nobody has talked to (its errors propagate)."""
    results = []
    target = None
    for check in exercise.checks:
        if target is None or check.fresh or not results[-1].passed or target.exited():
            target = fresh_target()
        if check.needs_tree and target.tree is None:
            result = not_run(check, "needs the server's process tree (run it through the runner)")
        else:
            result = run_check(check, target)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def expect_text(reply, wanted, who, timeout=ANSWER_TIMEOUT):
    """Fail unless the reply is the one line `wanted`; the words say what came instead."""
    if reply.text == wanted:
        return
    raise Fault(f"{who} expected `{wanted}` but {what_came(reply, timeout)}")


def what_came(reply, timeout=ANSWER_TIMEOUT):
    """A reply that was not the expected one, in words."""
    if reply.data:
        cut = "…" if len(reply.line) > SHOWN_AT_MOST else ""
        return f"got {shown_bytes(reply.line[:SHOWN_AT_MOST]) + cut!r}"
    if reply.end == "timeout":
        return f"got no answer within {timeout:g} s"
    if reply.end == "reset":
        return "the connection was reset"
    return "the server closed the connection without an answer"
