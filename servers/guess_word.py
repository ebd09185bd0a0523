"""Exercise 3: a web server where the URL path guesses a secret word.

    python -m servers.guess_word --port 8081

GET /WORD is a guess (percent-decoded, case-insensitive): the right word answers 200 with
a page that says so, a wrong one answers 404; once someone found the word, every guess
answers 200 with a page saying it was already found. GET / explains the game;
/favicon.ico is not a guess. Everything echoed back is HTML-escaped.

The word comes from --secret, else $FORKWATCH_SECRET, else one picked from a built-in
list. It is never printed.
"""

import html
import random
import threading
import urllib.parse

from servers.common import base_parser, fail, resolve_secret, run_forever, say
from servers.http_common import PageHandler, make_http_server

DEFAULT_PORT = 8081
WORDS = ("socket", "kernel", "process", "thread", "server", "client", "zombie", "signal", "packet", "python")
NOT_GUESSES = ("/favicon.ico", "/robots.txt")


def page(title, body):
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{title}</title></head><body><h1>{title}</h1>{body}</body></html>"
    )


RULES_PAGE = page(
    "Guess the word",
    "<p>The server holds a secret word. Guess it by visiting <code>/WORD</code>, for "
    "example <code>/socket</code>. A wrong word answers <b>404</b>; the right one answers "
    "<b>200</b>.</p>",
)


class WordGame:
    """The secret and whether it was found, shared by every handler thread."""

    def __init__(self, secret):
        self.secret = secret.casefold()
        self._lock = threading.Lock()
        self.found = False

    def guess(self, word):
        """Returns 'right', 'wrong' or 'found' (already found by someone)."""
        with self._lock:
            if self.found:
                return "found"
            if word.casefold() == self.secret:
                self.found = True
                return "right"
            return "wrong"


class WordHandler(PageHandler):
    server_version = "guessword/1.0"

    def do_GET(self):
        path = self.path_only()
        if path == "/":
            self.send_page(200, RULES_PAGE)
            return
        if path in NOT_GUESSES:
            self.send_page(404, page("Not found", "<p>That is not a guess.</p>"))
            return
        word = urllib.parse.unquote(path[1:], errors="replace")
        shown = html.escape(self.shown_path(path)[1:])
        outcome = self.server.game.guess(word)
        say(f"{self.client_address} guessed a word: {outcome}")
        if outcome == "right":
            self.send_page(200, page("You found it!", f"<p><b>{shown}</b> is the secret word.</p>"))
        elif outcome == "found":
            self.send_page(
                200, page("Already found", f"<p>The word was already found; you guessed <b>{shown}</b>.</p>")
            )
        else:
            self.send_page(404, page("Wrong word", f"<p><b>{shown}</b> is not the word. Try again.</p>"))


def make_server(host="127.0.0.1", port=DEFAULT_PORT, secret="socket"):
    server = make_http_server(host, port, WordHandler)
    server.game = WordGame(secret)
    return server


def main(argv=None):
    parser = base_parser(__doc__.splitlines()[0], DEFAULT_PORT)
    parser.add_argument("--secret", help="the secret word (default: $FORKWATCH_SECRET, else from a list)")
    args = parser.parse_args(argv)
    secret = resolve_secret(args.secret, lambda: random.choice(WORDS)).strip()
    if not secret or "/" in secret:
        return fail("the secret word must be non-empty and have no '/'")
    try:
        server = make_server(args.host, args.port, secret)
    except OSError as exc:
        return fail(f"cannot listen: {exc}")
    return run_forever(server, f"guess-the-word server is listening to {server.server_address[1]}")


if __name__ == "__main__":
    raise SystemExit(main())
