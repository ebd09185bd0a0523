"""Checks for exercise 3, guess the word: an HTTP server where GET /WORD is a guess — a
wrong word answers 404, the secret 200, and once it was found every guess 200; what it
echoes is HTML-escaped; /favicon.ico, which every browser asks for, is not a guess.
"""

import dataclasses
import re
import secrets

from supervisor.core.checks.base import ANSWER_TIMEOUT, Check, Exercise, Fault
from supervisor.core.checks.client import shown_bytes

WORDS = ("socket", "kernel", "process", "thread", "server", "client", "zombie", "signal", "packet")
PAGE_LIMIT = 256 * 1024
STATUS_LINE = re.compile(rb"^HTTP/\d\.\d (\d{3})")
CONTENT_LENGTH = re.compile(rb"^content-length:\s*(\d+)\s*$", re.IGNORECASE | re.MULTILINE)
MARKUP = b"<script>fw()</script>"
PROBE = "zzqx"  # a wrong word that is in no page by chance


def new_secret():
    return secrets.choice(WORDS)


def wrong_word(secret):
    return secret + "x"


@dataclasses.dataclass(frozen=True)
class Page:
    status: int | None  # None: no status line came
    body: bytes
    raw: bytes


def cut_at_response_end(buffer):
    """Where a response with a Content-Length ends (else it ends when the server closes)."""
    head_end = buffer.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    length = CONTENT_LENGTH.search(buffer[:head_end])
    if length is None:
        return None
    end = head_end + 4 + int(length.group(1))
    return end if len(buffer) >= end else None


def get(trial, who, path):
    """GET path (bytes, sent as they are) over HTTP/1.0; the page that came back."""
    client = trial.client(who)
    client.send(b"GET " + path + b" HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    reply = client.read(cut_at_response_end, ANSWER_TIMEOUT, PAGE_LIMIT)
    client.close()
    status = STATUS_LINE.match(reply.data)
    _, _, body = reply.data.partition(b"\r\n\r\n")
    return Page(int(status.group(1)) if status else None, body, reply.data)


def answered(page, what):
    """Fail when there was no HTTP answer at all."""
    if page.status is None:
        shown = shown_bytes(page.raw[:80]) if page.raw else "nothing"
        raise Fault(f"{what} got no HTTP answer (no status line): {shown!r}")


def expect_status(page, wanted, what):
    answered(page, what)
    if page.status != wanted:
        raise Fault(f"{what} answered {page.status}, not {wanted}")


def wrong_is_404(trial):
    word = wrong_word(trial.secret)
    expect_status(get(trial, "A", f"/{word}".encode()), 404, f"the wrong word /{word}")


def escaped(trial):
    for who, path in (("A", b"/%3Cscript%3Efw()%3C%2Fscript%3E"), ("B", b"/" + MARKUP)):
        page = get(trial, who, path)
        answered(page, f"a guess of {path.decode()}")
        if MARKUP in page.body.lower():
            raise Fault(
                f"the word is echoed unescaped: the guess {path.decode()} came back as the markup "
                f"{MARKUP.decode()} (escape it with html.escape)"
            )


def odd_bytes(trial):
    for who, path in (("A", b"/%FF%FEcaf%E9"), ("B", b"/\xff\xfe")):
        answered(get(trial, who, path), f"a guess that is not UTF-8 ({shown_bytes(path)})")
    word = wrong_word(trial.secret)
    page = get(trial, "C", f"/{word}".encode())
    answered(page, "the next guess, after the ones that were not UTF-8,")


def right_then_found(trial):
    expect_status(get(trial, "A", f"/{trial.secret}".encode()), 200, f"the secret word /{trial.secret}")
    word = wrong_word(trial.secret)
    page = get(trial, "B", f"/{word}".encode())
    if page.status == 404:
        raise Fault(f"after the word was found, the guess /{word} answered 404; every guess then answers 200")
    expect_status(page, 200, f"the guess /{word} after the word was found")


def favicon_not_a_guess(trial):
    found = get(trial, "A", f"/{trial.secret}".encode())
    expect_status(found, 200, f"the secret word /{trial.secret}")
    guess = get(trial, "B", f"/{PROBE}".encode())
    expect_status(guess, 200, f"the guess /{PROBE} after the word was found")
    icon = get(trial, "C", b"/favicon.ico")
    answered(icon, "/favicon.ico")
    if icon.status == guess.status and icon.body == guess.body.replace(PROBE.encode(), b"favicon.ico"):
        raise Fault(
            "/favicon.ico is taken as a guess: after the word was found it got the page every guess "
            "gets (browsers ask for it on their own)"
        )


EXERCISE = Exercise(
    name="guess_word",
    title="guess the word",
    new_secret=new_secret,
    secret_form=r"[a-z]{1,40}",
    secret_words="a word of lowercase letters a-z",
    checks=(
        Check("guess_word.wrong_is_404", "a wrong word answers 404", wrong_is_404),
        Check(
            "guess_word.escaped",
            "a guess is echoed HTML-escaped: <script> in the path never comes back as markup",
            escaped,
        ),
        Check(
            "guess_word.odd_bytes",
            "a guess that is not UTF-8 gets an HTTP answer, and the server goes on",
            odd_bytes,
        ),
        Check(
            "guess_word.right_then_found",
            "the secret word answers 200; after that every guess answers 200",
            right_then_found,
        ),
        Check(
            "guess_word.favicon",
            "/favicon.ico is not a guess: after the word was found it does not get a guess's page",
            favicon_not_a_guess,
        ),
    ),
)
