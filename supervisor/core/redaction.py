"""Keeps the games' secrets out of recordings: finds a secret in any text of an event.

A secret is matched the way its game would accept it as a guess, so every spelling that
would win the round is hidden, wherever it shows up (a console line, a play's summary, a
transcript, a snapshot):

- a number (`kind="number"`): any run of digits and underscores that `int()` reads as that
  number — `42`, `042`, `4_2`;
- a word (`kind="word"`): any run of letters, digits and %-escapes that, unescaped and
  case-folded, is the word — `socket`, `SOCKET`, `%73ocket`.

Matching errs on the side of hiding: a PID that happens to equal the secret number is
hidden too. Only text is scrubbed; numbers stay numbers.
"""

import dataclasses
import re
import urllib.parse

HIDDEN = "[secret]"
KINDS = ("number", "word")
_TOKEN = re.compile(r"(?:\w|%[0-9A-Fa-f]{2})+")


@dataclasses.dataclass(frozen=True)
class Secret:
    kind: str
    value: str

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"a secret's kind is one of {', '.join(KINDS)}, not {self.kind!r}")
        if not isinstance(self.value, str) or not self.value.strip():
            raise ValueError("a secret is a non-empty text")

    @property
    def normal(self):
        return normal_form(self.kind, self.value.strip())


def normal_form(kind, token):
    """The form in which a guess is compared with the secret."""
    if kind == "number":
        return token.replace("_", "").lstrip("0")
    return urllib.parse.unquote(token, errors="replace").casefold()


def scrub_text(text, secrets):
    """`text` with every spelling of each secret replaced by HIDDEN."""
    wanted = {(s.kind, s.normal) for s in secrets}

    def hide(match):
        token = match.group(0)
        for kind, normal in wanted:
            if normal_form(kind, token) == normal:
                return HIDDEN
        return token

    return _TOKEN.sub(hide, text)


def scrub(value, secrets):
    """A copy of a JSON-like value (dicts, lists, text, numbers) with the secrets hidden
    in every text; the value itself when there are no secrets."""
    if not secrets:
        return value
    if isinstance(value, str):
        return scrub_text(value, secrets)
    if isinstance(value, dict):
        return {key: scrub(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(item, secrets) for item in value]
    return value
