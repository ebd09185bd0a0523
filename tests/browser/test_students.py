"""A student's server in a real browser: `forkwatch --serve FILE --as EXERCISE` shows a card
marked "student code"; the instructor presses Check, and the instructor's page and a
viewer's both show each check's pass or fail line, the fault and its transcript, the
summary, and the server's children drawn while the checks ran; two students' forking
servers run side by side under the same load, and the one that never reaps shows its
zombies."""

import os
import re

import pytest
from playwright.sync_api import expect

from tests.core.check_support import SOLUTIONS
from tests.helpers import TOKEN, Dashboard, card, open_as_instructor, open_as_viewer, start_from_page

pytestmark = pytest.mark.browser

SECRET = os.path.join(SOLUTIONS, "secret_per_process.py")
ZOMBIES = os.path.join(SOLUTIONS, "forking_clock_zombies.py")
REAPS = os.path.join(SOLUTIONS, "forking_clock_keeps_copy.py")
# Counts the most nodes the card's drawing had at once, from now on.
COUNT_NODES = """(name) => {
  const svg = document.querySelector(`#card-${name} svg.tree-drawing`);
  window.mostNodes = svg.querySelectorAll("g.node").length;
  new MutationObserver(() => {
    window.mostNodes = Math.max(window.mostNodes, svg.querySelectorAll("g.node").length);
  }).observe(svg, { childList: true, subtree: true });
}"""


@pytest.fixture(scope="module")
def students_board(tmp_path_factory):
    """A dashboard with a student's forking secret-number server (per-process state) and
    two students' forking clocks, one that never reaps and one that does."""
    folder = str(tmp_path_factory.mktemp("students"))
    args = ["--serve", SECRET, "--as", "secret_number", "--name", "team3"]
    args += ["--serve", ZOMBIES, "--as", "forking_clock", "--name", "zombies"]
    args += ["--serve", REAPS, "--as", "forking_clock", "--name", "reaps"]
    board = Dashboard(folder, TOKEN, args=args)
    board.start()
    yield board
    board.stop()


@pytest.fixture
def board(students_board):
    yield students_board
    students_board.stop_everything()


def test_check_from_the_page_shows_every_result_to_everyone(page, board, browser):
    open_as_instructor(page, board)
    box = card(page, "team3")
    expect(box.locator("[data-field=student]")).to_have_text("student code")
    expect(card(page, "secret_number").locator("[data-field=student]")).to_have_count(0)
    start_from_page(page, "team3")
    viewer = browser.new_context().new_page()
    try:
        open_as_viewer(viewer, board)
        seen = card(viewer, "team3")
        expect(seen.locator("[data-field=student]")).to_have_text("student code")
        expect(seen.locator("button[data-command=check]")).to_have_count(0)
        page.evaluate(COUNT_NODES, "team3")

        box.locator("button[data-command=check]").click()
        for shown in (box, seen):
            summary = shown.locator(".check-block > summary [data-field=check-summary]")
            expect(summary).to_have_text(
                re.compile(r"^1 of 4 passed, 3 failed; at most \d+ process"), timeout=30000
            )
            expect(shown.locator(".check-block")).to_have_attribute("open", "")
            expect(shown.locator("li.check-pass")).to_have_count(1)
            expect(shown.locator("li.check-pass code")).to_have_text("secret_number.wrong")
            failed = shown.locator("li.check-fail", has_text="secret_number.two_connected")
            expect(failed.locator(".check-fault")).to_have_text(
                "secret-number state is per process under forking: two clients both heard `right`"
            )
            failed.locator("details.check-transcript > summary").click()
            expect(failed.locator("pre")).to_contain_text("A    received  'right\\n'")
            expect(failed.locator("pre")).to_contain_text("B    received  'right\\n'")
        expect(box.locator("button[data-command=check]")).to_be_enabled()
        assert page.evaluate("window.mostNodes") >= 3, "the children drawn while the checks ran"
        expect(page.locator("#timeline")).to_contain_text("team3: 1 of 4 checks passed; failed: ")
        box.locator("button[data-check-stage]").click()
        for shown in (page, viewer):  # the card with its checks, on every page's stage
            staged = shown.locator("#stage .stage-body #card-team3")
            expect(staged.locator(".check-block [data-field=check-summary]")).to_contain_text("1 of 4 passed")
            expect(staged.locator("li.check-fail")).to_have_count(3)
    finally:
        viewer.context.close()


def test_two_students_servers_side_by_side_under_the_same_load(page, board, browser):
    open_as_instructor(page, board)
    viewer = browser.new_context().new_page()
    try:
        open_as_viewer(viewer, board)
        row = page.locator('.compare-row[data-compare="students"]')
        expect(row.locator("select[name=server]")).to_have_count(2)
        row.locator("select[name=server]").first.select_option("reaps")
        row.locator("select[name=server]").last.select_option("zombies")
        row.locator("input[name=clients]").fill("3")
        row.locator("button[data-run=students]").click()
        for shown in (page, viewer):
            stage = shown.locator("#stage")
            expect(stage.locator("[data-field=stage-title]")).to_have_text("reaps against zombies")
            view = stage.locator(".compare-view")
            expect(view.locator(".load")).to_contain_text("done: measured, not assumed", timeout=30000)
            expect(view.locator(".side h4")).to_have_text(["reaps", "zombies"])
            reaps, zombies = view.locator('[data-side="reaps"]'), view.locator('[data-side="zombies"]')
            for side in (reaps, zombies):
                expect(side.locator(".total")).to_contain_text("3 of 3 answered")
            expect(zombies.locator(".students-figures")).to_contain_text("zombies left: 3 · errors: 0")
            expect(reaps.locator(".students-figures")).to_contain_text("zombies left: 0 · errors: 0")
    finally:
        viewer.context.close()
