"""What a dress rehearsal of the whole lecture found, each fixed and held here in a real
browser: what a client gets after handle_request() ended, a console kept across restarts,
the mode badge, the secret as a private peek and the finder's banner, the games' feeds,
the swap panes, confirmations, the status column kept fresh."""

import re
import socket

import pytest
from playwright.sync_api import expect

from supervisor.core.load import QUESTION
from tests.helpers import card, open_as_instructor, open_as_viewer, start_from_page, unfold, wait_for

pytestmark = pytest.mark.browser

RED = "rgb(179, 38, 30)"  # --bad


def test_after_handle_request_a_client_is_refused_and_the_old_answer_goes_on_restart(page, live):
    open_as_instructor(page, live)
    box = start_from_page(page, "clock", once=True)
    expect(box.locator("[data-field=mode]")).to_have_text("handle_request()")
    ask = box.locator("button[data-play=ask]")
    ask.click()
    answer = box.locator(".client-panel .answer")
    expect(answer).not_to_have_class(re.compile(r"\bwrong\b"))
    expect(box.locator("[data-field=state]")).to_have_text("EXITED")
    expect(box).not_to_have_class(re.compile(r"\bfolded\b"))  # it ended by itself: still open
    port = live.server_detail("clock")["port"]
    ask.click()  # what a real client gets now
    expect(answer).to_have_text(f"connection refused: nobody listens on 127.0.0.1:{port}")
    expect(answer).to_have_class(re.compile(r"\bwrong\b"))
    # serve_forever() next: the old answer goes, the console keeps the first run
    box.locator("input[name=once]").set_checked(False)
    box.locator("button[data-command=restart]").click()
    expect(box.locator("[data-field=state]")).to_have_text("RUNNING")
    expect(box.locator("[data-field=mode]")).to_have_text("serve_forever()")
    expect(box.locator(".client-panel .result")).to_be_empty()
    console = box.locator("pre.server-console")
    port = live.server_detail("clock")["port"]
    pid = live.server_detail("clock")["pid"]
    expect(console).to_contain_text(f"server is listening to {port}")
    text = console.text_content()  # the first run's lines, a separator, the second run's
    separator = f"──── clock started again as PID {pid} ────"
    assert (
        text.index("served one client, exiting")
        < text.index(separator)
        < text.rindex("server is listening to")
    )


def test_the_secret_is_a_private_peek_and_the_finder_gets_a_banner_everywhere(browser, live):
    live.start_server("secret_number")
    pages = []
    try:
        for _ in range(3):
            pages.append(browser.new_context().new_page())
        teacher, ada, bob = pages
        open_as_instructor(teacher, live)
        open_as_viewer(ada, live)
        open_as_viewer(bob, live)
        box = card(teacher, "secret_number")
        peek = box.get_by_role("button", name="Hold to peek at the secret")
        secret_box = box.locator("[data-field=secret]")
        peek.hover()
        teacher.mouse.down()
        expect(secret_box).to_have_text(re.compile(r"^secret: \d+$"))
        secret = secret_box.inner_text().split()[-1]
        teacher.mouse.up()
        expect(secret_box).to_be_hidden()
        expect(secret_box).to_have_text("")
        # the games' feed hides a guess while the round is on
        ada.locator("#nickname").fill("ada")
        game = card(ada, "secret_number")
        wrong = "1" if secret != "1" else "2"
        game.locator("input[name=guess]").fill(wrong)
        game.get_by_role("button", name="Guess").click()
        history = card(bob, "secret_number").locator("[data-field=history]")
        expect(history).to_contain_text("ada guessed a number: wrong")
        game.locator("input[name=guess]").fill(secret)
        game.get_by_role("button", name="Guess").click()
        for page in pages:
            expect(page.locator("#banner")).to_contain_text(
                "ada found the secret of Secret number (exercise 2)!"
            )
        expect(history).to_contain_text(f"ada guessed {secret}: right")  # the round is over: shown
        assert secret not in bob.locator("[data-field=secret]").all_text_contents()
    finally:
        for page in pages:
            page.context.close()


def test_swap_panes_hide_until_asked_and_the_form_uses_the_nickname_of_now(browser, live):
    live.start_server("swap")
    first, second = browser.new_context().new_page(), browser.new_context().new_page()
    try:
        open_as_viewer(first, live)
        open_as_viewer(second, live)
        box = card(first, "swap")
        panes = box.locator(".swap-panes")
        single = box.locator("[data-pane=you]")
        expect(panes).to_be_hidden()
        expect(single).to_be_visible()
        toggle = box.get_by_role("button", name="Two-pane demo (A/B)")
        toggle.click()
        expect(panes).to_be_visible()
        expect(single).to_be_hidden()
        box.get_by_role("button", name="Back to one form").click()
        expect(panes).to_be_hidden()
        first.locator("#nickname").fill("zoe")  # changed after the page was made
        second.locator("#nickname").fill("yan")
        single.locator("input[name=text]").fill("apples")
        single.get_by_role("button", name="Send").click()
        other = card(second, "swap").locator("[data-pane=you]")
        other.locator("input[name=text]").fill("pears")
        other.get_by_role("button", name="Send").click()
        expect(other.locator(".answer")).to_have_text("zoe sent you: apples")
        expect(single.locator(".answer")).to_have_text("yan sent you: pears")
        for page in (first, second):
            expect(card(page, "swap").locator("[data-field=history]")).to_contain_text("zoe swapped with yan")
    finally:
        first.context.close()
        second.context.close()


def test_stop_everything_asks_first_and_kill_all_children_shows_only_where_children_can_be(page, live):
    open_as_instructor(page, live)
    live.start_server("clock")
    expect(card(page, "clock").locator("button[data-command=kill-children]")).to_have_count(0)
    expect(unfold(page, "web").locator("button[data-command=kill-children]")).to_have_count(0)
    expect(card(page, "forking_clock").locator("button[data-command=kill-children]")).to_have_count(1)
    expect(card(page, "fork_demo").locator("button[data-command=kill-children]")).to_have_count(1)
    stop_all = page.locator("#stop-all")
    stop_all.click()
    expect(stop_all).to_have_text("Click again to stop everything")
    assert live.server_detail("clock")["state"] == "RUNNING"
    expect(stop_all).to_have_text("Stop everything", timeout=8_000)  # not clicked again: nothing happens
    assert live.server_detail("clock")["state"] == "RUNNING"
    stop_all.click()
    stop_all.click()
    expect(card(page, "clock").locator("[data-field=state]")).to_have_text("STOPPED")


def test_the_instructor_plays_as_the_instructor(page, live):
    live.start_server("clock")
    open_as_instructor(page, live)
    expect(page.locator("#nickname")).to_have_value("instructor")
    card(page, "clock").locator("button[data-play=ask]").click()
    expect(page.locator("#timeline")).to_contain_text("instructor asked the time")


def test_the_status_column_follows_the_kernel(page, live):
    open_as_instructor(page, live)
    box = start_from_page(page, "forking_clock", delay=3, busy=True, reap=True)
    port = live.server_detail("forking_clock")["port"]
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
    try:
        child = box.locator("table.tree tbody tr:not(.root)").first
        expect(child.locator("td.status")).to_have_text("running")  # computing its delay
        for sock in socks:
            sock.sendall(QUESTION)
        wait_for(lambda: all(len(sock.recv(25)) == 25 for sock in socks), 20.0, "the four answers")
        expect(child.locator("td.status")).to_have_text(
            "sleeping", timeout=5_000
        )  # waiting for the next question
        kill_all = box.locator("button[data-command=kill-children]")
        kill_all.click()
        kill_all.click()
        expect(box.locator("table.tree tbody tr")).to_have_count(1)
    finally:
        for sock in socks:
            sock.close()
