"""Checks for exercise 2, guess the secret number: `wrong` / `right` / `secret found`, many
guesses per connection, and one "found" shared by every handler — threads or forked
processes — so that exactly one guesser ever hears `right`.

The protocol: each guess is one line (a whole number); each answer is one line.
"""

import secrets

from supervisor.core.checks.base import ANSWER_TIMEOUT, Check, Exercise, Fault, expect_text, what_came

GUESSERS = 20


def new_secret():
    return str(secrets.randbelow(100) + 1)


def wrong_numbers(secret):
    """Two different numbers in 1-100 that are not the secret."""
    number = int(secret)
    return str(number % 100 + 1), str((number + 1) % 100 + 1)


def guess(client, number):
    client.send(f"{number}\n".encode())
    return client.read_line(ANSWER_TIMEOUT, limit=256)


def not_shared(trial, who_heard):
    """The fault of more than one `right`, named by what the tree shows: handlers that are
    forked processes, or threads of one."""
    if trial.tree is not None and len(trial.tree.children()) >= 2:
        return f"secret-number state is per process under forking: {who_heard} `right`"
    return f"the found state is not shared between handlers: {who_heard} `right`"


def wrong_guesses(trial):
    first, second = wrong_numbers(trial.secret)
    player = trial.client("A")
    expect_text(guess(player, first), "wrong", f"A guessing {first}")
    expect_text(guess(player, second), "wrong", f"A guessing {second} on the same connection")


def right_then_found(trial):
    wrong, _ = wrong_numbers(trial.secret)
    winner = trial.client("A")
    expect_text(guess(winner, trial.secret), "right", "A guessing the secret")
    expect_text(guess(winner, trial.secret), "secret found", "A guessing it again")
    other = trial.client("B")
    reply = guess(other, wrong)
    if reply.text == "wrong":
        raise Fault(
            "after A was right, B's guess got `wrong`: the found state is not shared between "
            "handlers (per process under forking?)"
        )
    expect_text(reply, "secret found", f"B guessing {wrong} after A was right")
    reply = guess(other, trial.secret)
    if reply.text == "right":
        raise Fault(not_shared(trial, "two clients, one after the other, both heard"))
    expect_text(reply, "secret found", "B guessing the secret after A was right")


def two_connected(trial):
    wrong, _ = wrong_numbers(trial.secret)
    first = trial.client("A")
    second = trial.client("B")
    expect_text(guess(second, wrong), "wrong", f"B guessing {wrong}")
    expect_text(guess(first, trial.secret), "right", "A guessing the secret")
    reply = guess(second, trial.secret)
    if reply.text == "right":
        raise Fault(not_shared(trial, "two clients both heard"))
    expect_text(reply, "secret found", "B, connected before A was right, guessing the secret")


def all_at_once(trial):
    players = [trial.client(f"G{number}") for number in range(1, GUESSERS + 1)]
    line = f"{trial.secret}\n".encode()
    for player in players:
        player.send(line)
    replies = [player.read_line(ANSWER_TIMEOUT, limit=256) for player in players]
    rights = [player.who for player, reply in zip(players, replies, strict=True) if reply.text == "right"]
    trial.note(f"{len(rights)} of {GUESSERS} heard `right`: {', '.join(rights) or 'nobody'}")
    if len(rights) > 1:
        raise Fault(not_shared(trial, f"{len(rights)} of {GUESSERS} guessers heard"))
    for player, reply in zip(players, replies, strict=True):
        if reply.text not in ("right", "secret found"):
            raise Fault(f"{player.who} expected `right` or `secret found` but {what_came(reply)}")
    if not rights:
        raise Fault(f"none of {GUESSERS} guessers of the secret heard `right`")


EXERCISE = Exercise(
    name="secret_number",
    title="guess the secret number",
    new_secret=new_secret,
    secret_form=r"[1-9][0-9]?|100",
    secret_words="a whole number from 1 to 100",
    checks=(
        Check(
            "secret_number.wrong",
            "a wrong guess gets `wrong`, and a client may guess again on the same connection",
            wrong_guesses,
        ),
        Check(
            "secret_number.right_then_found",
            "the secret gets `right`; after that every guess, from anyone, gets `secret found`",
            right_then_found,
        ),
        Check(
            "secret_number.two_connected",
            "of two clients connected at once, only the first to guess the secret hears `right` "
            "(the state is shared across handlers, forked ones too)",
            two_connected,
            fresh=True,
        ),
        Check(
            "secret_number.twenty_at_once",
            f"{GUESSERS} clients guess the secret at the same moment: exactly one hears `right`",
            all_at_once,
            fresh=True,
        ),
    ),
)
