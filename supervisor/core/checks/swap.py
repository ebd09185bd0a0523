"""Checks for exercise 1, the swap server: clients are paired in the order their lines
arrive and each receives the other's line; a client that leaves early is never paired; a
client alone gets `no partner` after the server's timeout.

The protocol: a client's first `\\n`-terminated line is its string; the answer is one line.
"""

import secrets

from supervisor.core.checks.base import ANSWER_TIMEOUT, Check, Exercise, Fault, Option, what_came
from supervisor.core.checks.client import shown_bytes

LEAVE_NOTICE = 2.0  # seconds the server has to notice that a waiting client left
LONE_GRACE = 3.0  # seconds past the server's timeout before a lone client gives up


def fresh_line(label):
    return f"{label} {secrets.token_hex(3)}".encode()


def judge(reply, own, partner, who):
    if reply.line == partner:
        return
    if reply.line == own:
        raise Fault(f"a swap server that answers a client its own line: {who} got back {own.decode()!r}")
    raise Fault(f"{who} expected its partner's line {partner.decode()!r} but {what_came(reply)}")


def swap_pair(trial, first_who, second_who):
    """Two clients send their lines, one after the other; each must get the other's."""
    first, second = fresh_line(first_who.lower()), fresh_line(second_who.lower())
    one = trial.client(first_who)
    one.send(first + b"\n")
    two = trial.client(second_who)
    two.send(second + b"\n")
    judge(one.read_line(ANSWER_TIMEOUT), first, second, first_who)
    judge(two.read_line(ANSWER_TIMEOUT), second, first, second_who)
    return first, second


def pair_in_order(trial):
    swap_pair(trial, "A", "B")
    swap_pair(trial, "C", "D")


def leave(trial, data, what):
    """A client sends `data`, then leaves (closes its sending side); returns what the server
    did within LEAVE_NOTICE seconds."""
    leaver = trial.client("X")
    leaver.send(data)
    leaver.shutdown_write()
    reply = leaver.read_to_eof(LEAVE_NOTICE, limit=4096)
    if reply.end == "eof":
        trial.note(f"the server closed the connection of the client that left {what}")
    return reply


def not_paired_with(trial, leftover, words):
    """The next two clients must be paired with each other, not with the one that left."""
    try:
        swap_pair(trial, "C", "D")
    except Fault as fault:
        if leftover in fault.words:
            raise Fault(words) from None
        raise


def left_before_line(trial):
    partial = fresh_line("half")
    leave(trial, partial, "before sending a whole line")
    not_paired_with(
        trial,
        partial.decode(),
        "a client that left before sending a whole line was paired: C got its unfinished line",
    )


def left_while_waiting(trial):
    line = fresh_line("gone")
    reply = leave(trial, line + b"\n", "while waiting for a partner")
    if reply.data:
        trial.note(f"the client that left got {shown_bytes(reply.data)!r}")
    not_paired_with(
        trial,
        line.decode(),
        "a client that left while waiting was still paired: C got the leaver's line, not D's",
    )


def lone_client(trial):
    timeout = trial.option("timeout")
    lone = trial.client("L")
    lone.send(fresh_line("alone") + b"\n")
    reply = lone.read_line(timeout + LONE_GRACE)
    if reply.text == "no partner":
        trial.note(f"`no partner` after {trial.transcript.elapsed():.1f} s (the timeout is {timeout:g} s)")
        return
    if not reply.data and reply.end == "timeout":
        raise Fault(
            f"a lone client got nothing within {timeout + LONE_GRACE:g} s; it should get `no partner` "
            f"after the server's timeout ({timeout:g} s; tell the check another with --opt timeout=SECONDS)"
        )
    raise Fault(f"a lone client should get `no partner` but {what_came(reply, timeout + LONE_GRACE)}")


EXERCISE = Exercise(
    name="swap",
    title="swap two strings",
    options=(Option("timeout", 60.0, "seconds the server waits for a partner before `no partner`"),),
    checks=(
        Check(
            "swap.pair_in_order",
            "two clients are paired in order and each receives the other's line; the next two as well",
            pair_in_order,
        ),
        Check(
            "swap.left_before_line",
            "a client that leaves before sending a whole line is never paired; the next pair still works",
            left_before_line,
        ),
        Check(
            "swap.left_while_waiting",
            "a client that leaves while waiting for a partner is never paired; the next pair still works",
            left_while_waiting,
        ),
        Check(
            "swap.lone_client",
            "a client alone gets `no partner` after the server's timeout",
            lone_client,
            fresh=True,
        ),
    ),
)
