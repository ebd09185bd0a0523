"""Keeps the games' secrets out of recordings: finds a guess of a hidden secret in the text
of its own server's events and snapshot entries, and replaces it with HIDDEN.

A secret belongs to one server. It is looked for only inside the dicts that belong to that
server — an event or entry whose `server` key (else `name` key) is that server, and
everything nested in it — never in another server's text, where hiding a common word or
number would itself give the secret away ("welcome to our web [secret]"). Within its
server's text it is found where a guess of it shows, in every spelling the game accepts:

- a number (`kind="number"`): any whole number `int()` reads as it — `42`, `042`, `4_2`;
- a word (`kind="word"`): a URL path that guesses it (`/socket`, `/SOCKET`, `/%73ocket`,
  after a space, a quote or the start and before a space, `?`, `#`, a quote or the end),
  and any text value that, trimmed, is a guess of it (a field such as `"word": "Socket"`).

Only text is changed, and never the values of the VOCABULARY keys; numbers stay numbers.
"""

import dataclasses
import re
import threading
import urllib.parse

HIDDEN = "[secret]"
KINDS = ("number", "word")
_NUMBER = re.compile(r"(?<!\w)[0-9][0-9_]*(?!\w)")
_PATH = re.compile(r"""((?:^|(?<=[\s"']))/)((?:\w|%[0-9A-Fa-f]{2})+)(?=$|[\s?#"'])""")
# Keys whose values come from fixed vocabularies or are names: never a guess, never scrubbed
# (hiding "zombie" in a status would break the replay and point at the secret).
VOCABULARY = frozenset(
    {"kind", "state", "status", "stream", "server", "name", "syscall", "protocol", "mechanism", "signal"}
)


@dataclasses.dataclass(frozen=True)
class Secret:
    server: str
    kind: str
    value: str

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"a secret's kind is one of {', '.join(KINDS)}, not {self.kind!r}")
        if not isinstance(self.value, str) or not self.value.strip():
            raise ValueError("a secret is a non-empty text")

    def guessed_by(self, text):
        """True when `text` is, as the game reads a guess, this secret."""
        if self.kind == "number":
            return text.replace("_", "").lstrip("0") == self.value.strip().lstrip("0")
        normal = urllib.parse.unquote(text, errors="replace").strip().casefold()
        return normal == self.value.strip().casefold()

    def scrub_text(self, text):
        if self.guessed_by(text.strip().lstrip("/")):
            return HIDDEN
        if self.kind == "number":
            return _NUMBER.sub(lambda m: HIDDEN if self.guessed_by(m.group(0)) else m.group(0), text)
        return _PATH.sub(lambda m: m.group(1) + HIDDEN if self.guessed_by(m.group(2)) else m.group(0), text)


def _owner(entry, inherited):
    for key in ("server", "name"):
        if isinstance(entry.get(key), str):
            return entry[key]
    return inherited


def scrub(value, secrets, owner=None):
    """A copy of a JSON-like value (dicts, lists, text, numbers) with each secret hidden in
    the parts that belong to its server; the value itself when nothing is hidden."""
    if not secrets:
        return value
    if isinstance(value, dict):
        owner = _owner(value, owner)
        return {
            key: item if key in VOCABULARY and isinstance(item, str) else scrub(item, secrets, owner)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(item, secrets, owner) for item in value]
    if isinstance(value, str) and owner is not None:
        for secret in secrets:
            if secret.server == owner:
                value = secret.scrub_text(value)
    return value


class HiddenSecrets:
    """The secrets a recorder hides now: a new round's secret at once; a revealed or
    replaced one until `forget` is called for it, which the recorder's writer does once
    it has written every event published before the reveal."""

    def __init__(self):
        self._lock = threading.Lock()
        self._rounds = {}  # server -> its current round's Secret
        self.current = frozenset()

    def hide(self, server, kind, value):
        """Returns the replaced round's secret, for `forget` later, or None."""
        secret = Secret(server, kind, value)
        with self._lock:
            previous = self._rounds.get(server)
            self._rounds[server] = secret
            self.current = self.current | {secret}
        return previous if previous != secret else None

    def reveal(self, server):
        """Returns the revealed secret, for `forget` later, or None."""
        with self._lock:
            return self._rounds.pop(server, None)

    def forget(self, secret):
        with self._lock:
            if secret not in self._rounds.values():
                self.current = self.current - {secret}
