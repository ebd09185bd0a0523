"""Checks for the clock protocol: the plain clock server and the forking one.

A client sends the lecture's 25-byte question; the server reads all 25 bytes, even when they
arrive in pieces, and answers ctime() (24 characters, then a newline). The forking server
also serves clients side by side, closes its copy of each client socket (so the client sees
EOF when its child is done), and reaps its exited children.
"""

import re
import time

from supervisor.core.checks.base import ANSWER_TIMEOUT, Check, Exercise, Fault, Option, what_came
from supervisor.core.checks.client import shown_bytes

QUESTION = b"What is the time?".ljust(25)
PIECES = (8, 8, 9)
PIECE_PAUSE = 0.2
CTIME = re.compile(
    rb"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:\d\d:\d\d \d{4}$"
)
CLOCK_SLACK = 5.0  # seconds the answer may differ from our clock (besides the delay)
CLOSE_WAIT = 1.0  # seconds after the clients left before the parent may hold none of their sockets
EOF_WAIT = 2.0  # seconds after the client finished before the connection must be closed
REAP_WAIT = 3.0  # seconds after the clients left before no child may be left (besides the delay)


def cut_at_answer(buffer):
    """An answer ends at a newline, at 25 bytes, or after a whole ctime() without one."""
    at = buffer.find(b"\n")
    if at >= 0:
        return at + 1
    if len(buffer) >= 25 or CTIME.match(buffer):
        return min(len(buffer), 25)
    return None


def answer_wait(trial):
    """Seconds to wait for an answer: a forking server's child may first wait its delay."""
    return trial.target.options.get("delay", 0.0) + ANSWER_TIMEOUT


def read_answer(trial, client):
    """Read one answer and fail unless it is the time now, in ctime() format."""
    wait = answer_wait(trial)
    reply = client.read(cut_at_answer, wait, limit=256)
    if not CTIME.match(reply.line):
        if reply.data:
            raise Fault(
                f"{client.who}'s answer is not in ctime() format (like 'Sun Nov 29 00:56:12 2026'): "
                f"{what_came(reply, wait)}"
            )
        raise Fault(f"{client.who} asked the time but {what_came(reply, wait)}")
    told = time.mktime(time.strptime(reply.line.decode("ascii"), "%a %b %d %H:%M:%S %Y"))
    off = abs(time.time() - told)
    if off > CLOCK_SLACK + wait:
        raise Fault(f"{client.who}'s answer is not the time now: it is off by {off:.0f} s")
    return reply


def ask_whole(trial):
    client = trial.client("A")
    client.send(QUESTION)
    read_answer(trial, client)


def ask_in_pieces(trial):
    client = trial.client("A")
    early = client.send_pieces(QUESTION, PIECES, PIECE_PAUSE)
    if early:
        raise Fault(
            "it answered before the whole 25-byte question arrived: it reads once (recv(25)) "
            "instead of until it has all 25 bytes"
        )
    read_answer(trial, client)


def side_by_side(trial):
    slow = trial.client("A")
    slow.send(QUESTION[:10])
    trial.note("A has sent only part of its question and waits")
    quick = trial.client("B")
    quick.send(QUESTION)
    try:
        read_answer(trial, quick)
    except Fault as fault:
        raise Fault(f"clients are served one at a time: while A was still asking, {fault.words}") from None
    slow.send(QUESTION[10:])
    read_answer(trial, slow)


def sees_eof(trial):
    client = trial.client("A")
    client.send(QUESTION)
    read_answer(trial, client)
    client.shutdown_write()
    reply = client.read_to_eof(EOF_WAIT, limit=4096)
    if reply.end == "eof":
        return
    if reply.data:
        trial.note(f"after A finished it still got {shown_bytes(reply.data)!r}")
    if trial.tree is not None:
        parent = trial.tree.listener()
        held = trial.tree.holders([client.port])
        if parent in held:
            raise Fault(
                "the forking parent never closes its copy of the client socket: the client never sees EOF"
            )
        if held:
            raise Fault(
                f"the child serving A keeps the connection open after A finished: A never sees EOF "
                f"(held by PID {', '.join(map(str, held))})"
            )
    raise Fault(f"A finished asking but the server did not close the connection within {EOF_WAIT:g} s")


def run_clients(trial, count):
    """`count` clients ask side by side, get their answers and leave; their local ports."""
    clients = [trial.client(f"C{number}") for number in range(1, count + 1)]
    for client in clients:
        client.send(QUESTION)
    for client in clients:
        read_answer(trial, client)
        client.close()
    return [client.port for client in clients]


def parent_closes(trial):
    ports = run_clients(trial, 3)
    parent = trial.tree.listener()
    deadline = time.monotonic() + CLOSE_WAIT  # the parent closes its copy just after fork()
    while (held := trial.tree.holders(ports).get(parent, [])) and time.monotonic() < deadline:
        time.sleep(0.05)
    trial.note(f"the listening parent, PID {parent}, holds {len(held)} sockets of these clients")
    if held:
        raise Fault(
            f"the forking parent never closes its copy of the client socket: it still holds "
            f"{len(held)} of {len(ports)} sockets of clients that left"
        )


def reaps_children(trial):
    run_clients(trial, 3)
    limit = trial.target.options.get("delay", 0.0) + REAP_WAIT
    deadline = time.monotonic() + limit
    seen = None
    while True:
        zombies, running = trial.tree.zombies(), trial.tree.children()
        if (len(zombies), len(running)) != seen:
            seen = (len(zombies), len(running))
            trial.note(f"the tree: {len(running)} children running, {len(zombies)} zombies")
        if not zombies and not running:
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    if zombies:
        raise Fault(
            f"exited children stay zombies: {len(zombies)} are left {limit:g} s after their clients "
            f"were gone (nobody reaps them with os.waitpid)"
        )
    raise Fault(f"{len(running)} children still run {limit:g} s after their clients were gone")


ANSWERS = Check("clock.answer", "a 25-byte question is answered with the time, in ctime() format", ask_whole)
PIECES_CHECK = Check(
    "clock.pieces",
    "a question that arrives in pieces (8 + 8 + 9 bytes, 0.2 s apart) is read whole, then answered",
    ask_in_pieces,
)

CLOCK = Exercise(name="clock", title="the clock server", checks=(ANSWERS, PIECES_CHECK))

FORKING_CLOCK = Exercise(
    name="forking_clock",
    title="the forking clock server",
    options=(Option("delay", 10.0, "seconds a child waits before it answers (the lecture's is 10)"),),
    checks=(
        ANSWERS,
        PIECES_CHECK,
        Check(
            "forking_clock.side_by_side",
            "a second client is answered while the first is still asking",
            side_by_side,
        ),
        Check(
            "forking_clock.eof",
            "when the client has finished, its connection is closed: the client sees EOF",
            sees_eof,
        ),
        Check(
            "forking_clock.parent_closes",
            "the parent holds no copy of its clients' sockets (each is its child's alone)",
            parent_closes,
            needs_tree=True,
        ),
        Check(
            "forking_clock.reaped",
            "after their clients left, the children end and are reaped: no zombies",
            reaps_children,
            needs_tree=True,
        ),
    ),
)
