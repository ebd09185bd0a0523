"""The embedded clients and games in a real browser (Playwright + Debian's Chromium)."""

import re

import pytest
from playwright.sync_api import expect

from tests.helpers import CTIME, TOKEN, Dashboard, card, open_as_instructor, open_as_viewer, start_from_page

pytestmark = pytest.mark.browser


def test_ask_the_time_shows_the_answer_and_the_25_bytes_sent(page, live):
    live.start_server("clock")
    open_as_viewer(page, live)
    box = card(page, "clock")
    box.locator("button[data-play=ask]").click()
    answer = box.locator(".client-panel .answer")
    expect(answer).to_have_text(CTIME)
    expect(box.locator(".transcript .sent")).to_contain_text("What·is·the·time?········")
    expect(box.locator(".transcript .sent")).to_contain_text("(25 bytes")


def test_the_forking_servers_child_lights_up_while_it_waits(page, live):
    open_as_instructor(page, live)
    box = start_from_page(page, "forking_clock", delay=1, reap=True)
    box.locator("button[data-play=ask]").click()
    expect(box.locator(".client-panel .waiting")).to_contain_text("waiting for the child")
    expect(box.locator("table.tree tbody tr")).to_have_count(2)  # the child, while it sleeps
    expect(box.locator(".client-panel .answer")).to_have_text(CTIME)
    expect(box.locator(".client-panel")).to_contain_text("answered by child PID")


def test_spawn_fork_clients_and_stop_them(page, live):
    open_as_instructor(page, live)
    box = start_from_page(page, "forking_clock", delay=0, reap=True)
    box.locator("input[name=count]").fill("5")
    box.locator("button[data-play=spawn]").click()
    expect(box.locator("table.tree tbody tr")).to_have_count(6)
    expect(box.locator("[data-field=groups]")).to_contain_text("5 of 5 clients running")
    box.locator("button[data-play=stop-clients]").click()
    expect(box.locator("table.tree tbody tr")).to_have_count(1)
    expect(box.locator("[data-field=groups]")).to_have_text("no fork clients running")


def test_swap_in_the_two_pane_demo(page, live):
    live.start_server("swap")
    open_as_viewer(page, live)
    box = card(page, "swap")
    box.get_by_role("button", name="Two-pane demo (A/B)").click()
    pane_a, pane_b = box.locator("[data-pane=A]"), box.locator("[data-pane=B]")
    pane_a.locator("input[name=text]").fill("apples")
    pane_a.get_by_role("button", name="Send").click()
    expect(pane_a.locator(".waiting")).to_contain_text("waiting for a partner")
    pane_b.locator("input[name=text]").fill("oranges")
    pane_b.get_by_role("button", name="Send").click()
    expect(pane_a.locator(".answer")).to_have_text("Bob sent you: oranges")
    expect(pane_b.locator(".answer")).to_have_text("Alice sent you: apples")


def test_number_game_secret_found_reaches_a_second_viewer(browser, live):
    live.start_server("secret_number")
    secret = live.api("POST", "/api/servers/secret_number/secret")[1]["secret"]
    first, second = browser.new_context(), browser.new_context()
    try:
        one, two = open_as_viewer(first.new_page(), live), open_as_viewer(second.new_page(), live)
        box_one, box_two = card(one, "secret_number"), card(two, "secret_number")
        box_one.locator("input[name=guess]").fill(secret)
        box_one.get_by_role("button", name="Guess").click()
        expect(box_one.locator(".answer")).to_have_text("right")
        expect(box_two.locator("[data-field=history]")).to_contain_text(f"guessed {secret}: right")
        box_two.locator("input[name=guess]").fill("1" if secret != "1" else "2")
        box_two.get_by_role("button", name="Guess").click()
        expect(box_two.locator(".answer")).to_have_text("secret found")
    finally:
        first.close()
        second.close()


def test_word_game_shows_404_and_200_pages_and_escapes_script(page, live):
    live.start_server("guess_word")
    word = live.api("POST", "/api/servers/guess_word/secret")[1]["secret"]
    open_as_viewer(page, live)
    box = card(page, "guess_word")
    box.locator("input[name=word]").fill("<script>window.pwned=1</script>")
    box.get_by_role("button", name="Guess").click()
    expect(box.locator(".status-line")).to_have_text(re.compile(r"^HTTP/1\.0 404"))
    frame = box.frame_locator("iframe")
    expect(frame.locator("body")).to_contain_text("<script>window.pwned=1</script> is not the word")
    assert page.evaluate("() => window.pwned === undefined")
    expect(box.locator("[data-field=history]")).to_contain_text("guessed a word: wrong")
    box.locator("input[name=word]").fill(word)
    box.get_by_role("button", name="Guess").click()
    expect(box.locator(".status-line")).to_have_text(re.compile(r"^HTTP/1\.0 200"))
    expect(box.frame_locator("iframe").locator("h1")).to_have_text("You found it!")


def test_web_client_one_request_per_button_and_any_path(page, live):
    live.start_server("web")
    open_as_viewer(page, live)
    box = card(page, "web")
    lines = box.locator(".status-line")
    box.get_by_role("button", name="GET /test").click()
    expect(lines).to_have_count(1)
    expect(lines).to_contain_text("404")
    expect(box.frame_locator("iframe").first.locator("body")).to_contain_text("/test not found")
    box.get_by_role("button", name="GET /", exact=True).click()
    expect(lines).to_have_count(1)
    expect(lines).to_contain_text("200")
    box.locator("input[name=path]").fill("lecture/notes")
    box.locator("button[data-play=get-path]").click()
    expect(lines).to_contain_text("404")
    expect(box.frame_locator("iframe").first.locator("body")).to_contain_text("/lecture/notes not found")
    requests = box.locator("pre.console span", has_text='"GET /lecture/notes HTTP')
    expect(requests).to_have_count(1)  # one button, one request


def test_playing_a_stopped_server_and_the_rate_limit_show_messages(page, tmp_path):
    board = Dashboard(str(tmp_path), TOKEN, play_rate=0.1).start()
    try:
        open_as_viewer(page, board)
        box = card(page, "clock")
        box.locator(".card-head h2").click()  # a stopped server's card is folded to one line
        box.locator("button[data-play=ask]").click()
        answer = box.locator(".client-panel .answer")
        expect(answer).to_have_text("the server is not running (clock is stopped)")
        box.locator("button[data-play=ask]").click()
        expect(answer).to_have_text("slow down: at most 0.1 requests a second")
    finally:
        board.stop()


@pytest.mark.reliability(
    "intruders", "`<script>` and `<img onerror>` in swap strings, numbers and words, shown in Chromium"
)
def test_script_in_game_input_is_shown_as_text(page, live, report):
    for name in ("swap", "secret_number", "guess_word"):
        live.start_server(name)
    page.goto(live.url)
    expect(page.locator("#conn")).to_have_text("live")
    attack = "<img src=x onerror=window.pwned=1>"
    swap = page.locator("#card-swap")
    swap.get_by_role("button", name="Two-pane demo (A/B)").click()
    swap.locator("[data-pane=A] input[name=text]").fill(attack)
    swap.locator("[data-pane=A]").get_by_role("button", name="Send").click()
    swap.locator("[data-pane=B] input[name=text]").fill("<script>window.pwned=2</script>")
    swap.locator("[data-pane=B]").get_by_role("button", name="Send").click()
    expect(swap.locator("[data-pane=B] .answer")).to_have_text(f"Alice sent you: {attack}")
    number = page.locator("#card-secret_number")
    number.locator("input[name=guess]").fill("<b>1</b>")
    number.get_by_role("button", name="Guess").click()
    expect(number.locator(".answer")).to_have_text("error: not a number")
    word = page.locator("#card-guess_word")
    word.locator("input[name=word]").fill(attack)
    word.get_by_role("button", name="Guess").click()
    expect(word.locator(".status-line")).to_contain_text("404")
    assert page.locator("img[src=x]").count() == 0
    assert page.evaluate("() => window.pwned === undefined")
    report["cases"] = 4
