"""The lecture hall in a real browser, at a projector's 1920×1080 and a phone's 390×844:
the staged server fills the first screen and a second (viewer) browser follows it; Next
walks the lesson, starting what each step needs; each comparison runs from one click and
its chart shows the shape it measured."""

import os
import re
import socket

import pytest
from playwright.sync_api import expect

from supervisor.core.lesson import DEFAULT_LESSON
from tests.helpers import TOKEN, Dashboard, card, open_as_instructor, open_as_viewer, screenshot, wait_for

pytestmark = pytest.mark.browser

PROJECTOR = {"width": 1920, "height": 1080}
PHONE = {"width": 390, "height": 844}
N, S = 3, 0.5

# Contrast (WCAG): the ratio of two colours' relative luminances, AA is 4.5 for text.
CONTRAST = """([fore, back]) => {
  const lum = (c) => {
    const [r, g, b] = c.match(/[\\d.]+/g).slice(0, 3).map((v) => {
      const s = Number(v) / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const [a, b] = [lum(fore), lum(back)].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}"""
# The size a piece of text is drawn at, in screen pixels (an SVG's text is scaled with it).
DRAWN_SIZE = """(node) => {
  const size = parseFloat(getComputedStyle(node).fontSize);
  const svg = node.ownerSVGElement;
  if (!svg) return size;
  return size * svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
}"""


def drawn_size(locator):
    """DRAWN_SIZE of a node, asked again if the drawing was redrawn under the question (a
    node replaced between finding and measuring it has no size)."""
    return wait_for(lambda: (size := locator.evaluate(DRAWN_SIZE)) == size and size, 5.0, "a drawn size")


@pytest.fixture
def board(tmp_path):
    """A dashboard of its own, whose lesson is the lecture's with a short comparison load."""
    with open(DEFAULT_LESSON) as handle:
        plan = handle.read()
    lesson = tmp_path / "lesson.toml"
    for name in ("threads_processes", "cpu"):
        plan = plan.replace(
            f'stage = "compare:{name}"\nrun = true\n',
            f'stage = "compare:{name}"\nrun = true\nload = {{ clients = {N}, seconds = {S} }}\n',
        )
    lesson.write_text(plan)
    dashboard = Dashboard(str(tmp_path), TOKEN, lesson=str(lesson)).start()
    yield dashboard
    dashboard.stop_everything()
    dashboard.stop()


@pytest.fixture
def two_browsers(browser):
    """The instructor's projector and a student's laptop, each a browser of its own (the
    screenshots for docs/ are taken at 0.6 of the pixels: the same layout, smaller files)."""
    scale = 0.6 if os.environ.get("FORKWATCH_SCREENSHOTS") == "1" else 1
    contexts = [browser.new_context(viewport=PROJECTOR, device_scale_factor=scale) for _ in range(2)]
    yield [context.new_page() for context in contexts]
    for context in contexts:
        context.close()


def color_pair(locator, fore="color", back="backgroundColor"):
    """Two computed colours of a node (asked again if it was redrawn under the question)."""
    script = f"(n) => [getComputedStyle(n).{fore}, getComputedStyle(n).{back}]"

    def colours():
        pair = locator.evaluate(script)
        return all(c.startswith("rgb") for c in pair) and pair

    return wait_for(colours, 5.0, "its colours")


def test_the_staged_server_fills_the_first_screen_and_a_viewer_follows(board, two_browsers):
    teacher, student = two_browsers
    open_as_instructor(teacher, board)
    open_as_viewer(student, board)
    board.start_server("forking_clock", {"delay": 30, "reap": True})
    assert board.api("POST", "/api/stage", {"kind": "server", "name": "forking_clock"})[0] == 200
    port = board.server_detail("forking_clock")["port"]
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    try:
        for page in (teacher, student):
            staged = page.locator("#stage .stage-body > #card-forking_clock.staged")
            expect(staged).to_be_visible()
            expect(staged.locator("svg.tree-drawing g.node")).to_have_count(4)
            stage = page.locator("#stage").bounding_box()
            assert (
                stage["y"] < 250 and stage["y"] + stage["height"] >= PROJECTOR["height"] - 2
            )  # the first screen
            # legible from the back row: labels and console at least 24 px, AA contrast
            label = staged.locator("svg.tree-drawing g.node > text").first
            assert drawn_size(label) >= 24
            console = staged.locator("pre.server-console")
            expect(console).to_contain_text("client is blocked for 30 seconds")
            assert drawn_size(console) >= 24
            assert page.evaluate(CONTRAST, color_pair(console)) >= 4.5
            circle = staged.locator("svg.tree-drawing g.node circle.body").first
            assert (
                page.evaluate(CONTRAST, [color_pair(label, "fill")[0], color_pair(circle, "fill")[0]]) >= 4.5
            )
            timeline = page.locator("#stage #timeline li").first
            assert drawn_size(timeline) >= 20
        screenshot(teacher, "stage")
        # the stopped servers fold to one line each, after the running one
        folded = teacher.locator(".cards > .card.folded")
        expect(folded).to_have_count(9)
        assert max(box["height"] for box in (folded.nth(i).bounding_box() for i in range(9))) < 80
        # the instructor puts another server on stage: the student's page follows
        board.start_server("clock")
        board.api("POST", "/api/stage", {"kind": "server", "name": "clock"})
        expect(student.locator("#stage #card-clock.staged")).to_be_visible()
        expect(student.locator("#stage [data-field=stage-title]")).to_have_text("Clock server (TCP)")
        expect(student.locator("#card-forking_clock")).not_to_have_class(re.compile(r"\bstaged\b"))
        # a student steps off to browse and back on, one tap each
        student.get_by_role("button", name="Step off to browse").click()
        expect(student.locator("#stage")).to_be_hidden()
        back_on = student.locator("#follow-back")
        expect(back_on).to_have_text("Follow the stage: Clock server (TCP)")
        board.api("POST", "/api/stage", {"kind": "server", "name": "forking_clock"})
        expect(back_on).to_have_text("Follow the stage: Forking clock server")
        back_on.click()
        expect(student.locator("#stage #card-forking_clock.staged")).to_be_visible()
        expect(back_on).to_be_hidden()
    finally:
        for sock in socks:
            sock.close()


def test_next_walks_the_lesson_starting_what_each_step_needs(board, two_browsers):
    teacher, student = two_browsers
    open_as_instructor(teacher, board)
    open_as_viewer(student, board)
    steps = board.api("GET", "/api/lesson")[1]["steps"]
    next_button = teacher.locator("#lesson [data-lesson=next]")
    for step in steps:
        next_button.click()
        where = f"step {step['step']} of {len(steps)}"
        for page in (teacher, student):
            expect(page.locator("#lesson [data-field=lesson-step]")).to_have_text(where)
            expect(page.locator("#lesson [data-field=lesson-title]")).to_have_text(step["title"])
        expect(student.locator("#lesson [data-field=lesson-watch] li")).to_have_count(len(step["watch"]))
        stage = step["stage"]
        if stage["kind"] == "server":
            for name, options in step["start"].items():
                wait_for(
                    lambda name=name, options=options: (
                        (info := board.server_detail(name))["state"] == "RUNNING"
                        and info["options"] == options
                    ),
                    20.0,
                    f"{name} running with the options of step {step['step']}",
                )
            staged = student.locator(f"#stage #card-{stage['name']}.staged")
            expect(staged.locator("[data-field=state]")).to_have_text("RUNNING", timeout=20_000)
            if step["clients"]:  # the looping clients make children
                expect(staged.locator("table.tree tbody tr")).not_to_have_count(1, timeout=20_000)
        else:
            view = student.locator("#stage .compare-view.on-stage")
            expect(view).to_have_attribute("data-compare", stage["name"])
            expect(view).to_have_attribute("data-state", "done", timeout=60_000)
    expect(next_button).to_be_disabled()
    screenshot(teacher, "lesson-last-step")


def chart_ends(side):
    """Seconds at the end of each client's bar, read back from the drawn chart."""
    ends = []
    for text in side.locator("svg.chart text.bar-note").all_text_contents():
        number, _, unit = text.partition(" ")
        if unit in ("s", "ms"):
            ends.append(float(number) / (1000 if unit == "ms" else 1))
    return sorted(ends)


def run_from_its_row(page, name, clients=N, seconds=S):
    row = page.locator(f".compare-row[data-compare={name}]")
    row.locator("input[name=clients]").fill(str(clients))
    if row.locator("input[name=seconds]").count():
        row.locator("input[name=seconds]").fill(str(seconds))
    row.get_by_role("button", name="Run").click()
    view = page.locator("#stage .compare-view.on-stage")
    expect(view).to_have_attribute("data-compare", name)
    expect(view).to_have_attribute("data-state", "done", timeout=60_000)
    return view


def test_each_comparison_runs_from_one_click_and_its_chart_shows_the_shape(board, two_browsers):
    teacher, student = two_browsers
    open_as_instructor(teacher, board)
    open_as_viewer(student, board)

    view = run_from_its_row(teacher, "threads_processes")
    serial, threads, processes = (
        view.locator(f"[data-side={key}]") for key in ("serial", "threads", "processes")
    )
    ends = chart_ends(serial)
    assert len(ends) == N and all(k * S * 0.95 <= end <= k * S + 0.6 for k, end in enumerate(ends, 1)), ends
    for side in (threads, processes):
        ends = chart_ends(side)
        assert len(ends) == N and all(S * 0.95 <= end <= S + 0.6 for end in ends), ends
    expect(threads.locator("svg.side-drawing g.thread")).to_have_count(N)  # the threads a tree hides
    expect(threads.locator("svg.side-drawing g.proc")).to_have_count(1)
    expect(processes.locator("svg.side-drawing g.proc")).to_have_count(N + 1)
    expect(student.locator("#stage .compare-view.on-stage")).to_have_attribute("data-state", "done")
    screenshot(teacher, "compare-threads-processes")

    view = run_from_its_row(teacher, "once_forever")
    once, forever = view.locator("[data-side=once]"), view.locator("[data-side=forever]")
    expect(once.locator("svg.chart text.bar-note.failed")).to_have_count(N - 1)
    expect(once.locator("svg.chart text.bar-note.failed").first).to_have_text("✗ refused")
    expect(once.locator(".after")).to_have_text("after: the program ended by itself (exit code 0)")
    expect(forever.locator(".after")).to_have_text("after: still running, still serving")
    assert len(chart_ends(forever)) == N
    screenshot(teacher, "compare-once-forever")

    view = run_from_its_row(teacher, "transports", clients=1)
    for key, connects, address in [
        ("tcp", True, r"127\.0\.0\.1:\d+"),
        ("udp", False, r"127\.0\.0\.1:\d+"),
        ("unix", True, r"clock\.sock$"),
        ("unix_dgram", False, r"clock-dgram\.sock$"),
    ]:
        side = view.locator(f"[data-side={key}]")
        expect(side.locator(".transcript li.received")).to_have_count(1)
        expect(side.locator(".transcript li.connect")).to_have_count(1 if connects else 0)
        expect(side.locator(".address")).to_have_text(re.compile(address))
    screenshot(teacher, "compare-transports")

    view = run_from_its_row(teacher, "cpu", clients=2, seconds=S)
    threads, processes = view.locator("[data-side=threads]"), view.locator("[data-side=processes]")
    ends = chart_ends(threads)
    assert len(ends) == 2 and max(ends) >= 2 * S * 0.9, ends  # one process: the work one after the other
    expect(processes.locator("svg.side-drawing text.cpu")).to_have_count(3)  # the server and each child
    expect(threads.locator("svg.side-drawing text.cpu")).to_have_count(2)  # each handler thread
    expect(processes.locator(".machine")).to_contain_text("this machine:")
    screenshot(teacher, "compare-cpu")


def test_on_a_phone_the_staged_server_comes_first_and_the_games_are_one_tap_away(board, browser):
    board.start_server("forking_clock", {"delay": 30, "reap": True})
    board.start_server("secret_number")
    board.api("POST", "/api/stage", {"kind": "server", "name": "forking_clock"})
    port = board.server_detail("forking_clock")["port"]
    sock = socket.create_connection(("127.0.0.1", port))
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        phone = open_as_viewer(context.new_page(), board)
        staged = phone.locator("#stage #card-forking_clock.staged")
        expect(staged).to_be_visible()
        assert staged.bounding_box()["y"] < PHONE["height"] / 2
        # the tree readable, its table whole: the client column is not cut off
        expect(staged.locator("table.tree tbody tr")).to_have_count(2)
        assert drawn_size(staged.locator("svg.tree-drawing g.node > text").first) >= 14
        scroller = staged.locator(".tree-scroll")
        assert scroller.evaluate("(n) => n.scrollWidth <= n.clientWidth + 1")
        client = staged.locator("table.tree thead th", has_text="client").bounding_box()
        assert client["x"] + client["width"] <= PHONE["width"]
        # every other card is one line, the running game too
        expect(phone.locator(".cards > .card:not(.folded)")).to_have_count(0)
        ask = staged.locator("button[data-play=ask]")
        assert ask.bounding_box()["y"] + ask.bounding_box()["height"] < PHONE["height"]  # above the fold
        # no line breaks mid-word: a console line wraps at spaces
        assert (
            staged.locator("pre.server-console").evaluate("(n) => getComputedStyle(n).wordBreak")
            != "break-all"
        )
        number = phone.locator(".games-nav a[data-open=secret_number]")
        expect(number).to_be_in_viewport()
        number.tap()
        game = card(phone, "secret_number")
        expect(game).not_to_have_class(re.compile(r"\bfolded\b"))
        expect(game.locator("input[name=guess]")).to_be_in_viewport()
        screenshot(phone, "phone")
    finally:
        context.close()
        sock.close()


def test_the_instructors_keys_and_their_map(board, page):
    page.set_viewport_size(PROJECTOR)
    open_as_instructor(page, board)
    page.keyboard.press("?")
    keymap = page.locator("#keymap")
    expect(keymap).to_be_visible()
    expect(keymap).to_contain_text("Ctrl-C: interrupt it")
    page.keyboard.press("Escape")
    expect(keymap).to_be_hidden()
    page.keyboard.press("n")  # step 1: the clock, on stage
    expect(page.locator("#lesson [data-field=lesson-step]")).to_have_text(re.compile(r"^step 1 of \d+$"))
    staged = page.locator("#stage #card-clock.staged [data-field=state]")
    expect(staged).to_have_text("RUNNING")
    page.keyboard.press("x")  # stop the staged server
    expect(staged).to_have_text("STOPPED")
    page.keyboard.press("s")  # and start it again
    expect(staged).to_have_text("RUNNING")
    wait_for(lambda: board.server_detail("clock")["state"] == "RUNNING", 10.0, "the clock running")
