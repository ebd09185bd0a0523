"""Where a hidden secret is found, and where it is deliberately left alone."""

import pytest

from supervisor.core.redaction import HIDDEN, HiddenSecrets, Secret, scrub

NUMBER = Secret("secret_number", "number", "42")
WORD = Secret("guess_word", "word", "server")


# (secret, line, whether a guess of the secret is in it)
LINES = [
    (NUMBER, "('127.0.0.1', 50120) guessed \"42\": right", True),
    (NUMBER, "('127.0.0.1', 50120) guessed \"042\": secret found", True),
    (NUMBER, "guessed 4_2: right", True),
    (NUMBER, "guessed +42: right", True),
    (NUMBER, "42", True),
    (NUMBER, "secret number server is listening to 12095", False),
    (NUMBER, "('127.0.0.1', 50142) guessed \"41\": wrong", False),
    (NUMBER, "guessed 420: wrong", False),
    (NUMBER, "guessed x42: error: not a number", False),
    (WORD, '127.0.0.1 - - [29/Nov/2026 10:00:00] "GET /server HTTP/1.0" 200 -', True),
    (WORD, '127.0.0.1 - - [29/Nov/2026 10:00:00] "GET /SERVER HTTP/1.0" 200 -', True),
    (WORD, '127.0.0.1 - - [29/Nov/2026 10:00:00] "GET /%73erver HTTP/1.0" 200 -', True),
    (WORD, '"GET /Server?again=1 HTTP/1.0" 200', True),
    (WORD, "/server", True),
    (WORD, "Server", True),
    # Hiding "server" in the program's own lines would show everyone what the secret is.
    (WORD, "guess-the-word server is listening to 8081", False),
    (WORD, "server stopped", False),
    (WORD, '"GET /servers HTTP/1.0" 404 -', False),
    (WORD, '"GET /a/server HTTP/1.0" 404 -', False),
    (WORD, '"GET /server/x HTTP/1.0" 404 -', False),
]


@pytest.mark.parametrize("secret, line, guessed", LINES)
def test_every_spelling_the_game_accepts_is_hidden_and_nothing_else(secret, line, guessed):
    scrubbed = secret.scrub_text(line)
    if not guessed:
        assert scrubbed == line
        return
    assert HIDDEN in scrubbed
    left = scrubbed.replace("50120", "").lower()
    assert secret.value not in left and "%73erver" not in left


def test_a_secret_is_hidden_only_in_its_own_servers_parts():
    snapshot = {
        "servers": [
            {
                "name": "secret_number",
                "output": ['guessed "42": right'],
                "tree": [{"pid": 42, "doing": "42"}],
            },
            {"name": "web", "output": ['[10:00:42] "GET / HTTP/1.0" 200']},
        ],
        "events": [
            {"server": "secret_number", "kind": "play", "text": "ada guessed 42: right"},
            {"server": None, "kind": "info", "text": "cleaned up 42 processes"},
        ],
    }
    scrubbed = scrub(snapshot, [NUMBER])
    mine, web = scrubbed["servers"]
    assert mine["output"] == [f'guessed "{HIDDEN}": right']
    assert mine["tree"] == [{"pid": 42, "doing": HIDDEN}]  # numbers stay numbers
    assert web == snapshot["servers"][1]
    assert scrubbed["events"][0]["text"] == f"ada guessed {HIDDEN}: right"
    assert scrubbed["events"][1] == snapshot["events"][1]


def test_vocabulary_values_are_never_scrubbed():
    zombie = Secret("guess_word", "word", "zombie")
    payload = {"server": "guess_word", "kind": "status", "status": "zombie", "note": "zombie"}
    assert scrub(payload, [zombie]) == {**payload, "note": HIDDEN}


def test_nothing_hidden_returns_the_same_object():
    payload = {"server": "secret_number", "lines": ["42"]}
    assert scrub(payload, []) is payload
    assert scrub(payload, [WORD]) == payload


def test_a_secret_needs_a_known_kind_and_a_value():
    with pytest.raises(ValueError):
        Secret("x", "colour", "red")
    with pytest.raises(ValueError):
        Secret("x", "word", "  ")


def test_a_new_round_hides_its_secret_at_once_and_keeps_the_old_one_until_forgotten():
    hidden = HiddenSecrets()
    assert hidden.hide("secret_number", "number", "42") is None
    old = Secret("secret_number", "number", "42")
    replaced = hidden.hide("secret_number", "number", "17")
    assert replaced == old
    assert hidden.current == {old, Secret("secret_number", "number", "17")}
    hidden.forget(replaced)
    assert hidden.current == {Secret("secret_number", "number", "17")}


def test_a_revealed_secret_stays_hidden_until_forgotten_unless_its_round_came_back():
    hidden = HiddenSecrets()
    hidden.hide("guess_word", "word", "zombie")
    revealed = hidden.reveal("guess_word")
    assert hidden.reveal("guess_word") is None
    assert hidden.current == {revealed}
    assert hidden.hide("guess_word", "word", "zombie") is None  # a new round drew the same word
    hidden.forget(revealed)
    assert hidden.current == {revealed}
