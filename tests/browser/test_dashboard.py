"""The dashboard in a real browser: Playwright driving Debian's Chromium against a live
forkwatch with real servers and real forks."""

import socket

import pytest
from playwright.sync_api import expect

from tests.helpers import (
    TOKEN,
    Dashboard,
    card,
    open_as_instructor,
    open_as_viewer,
    start_from_page,
    unfold,
    wait_for,
)

pytestmark = pytest.mark.browser


def test_the_token_leaves_the_address_bar(page, live):
    open_as_instructor(page, live)
    assert TOKEN not in page.url


def test_start_a_server_from_the_page(page, live):
    open_as_instructor(page, live)
    box = start_from_page(page, "clock")
    port = live.server_detail("clock")["port"]
    expect(box.locator("[data-field=port]")).to_have_text(str(port))
    box.locator("details.console-block summary").click()
    expect(box.locator("pre.console")).to_contain_text(f"server is listening to {port}")
    expect(page.locator("#timeline")).to_contain_text("clock is ready on port")


def test_children_appear_with_their_clients_and_die_by_the_kill_buttons(page, live):
    open_as_instructor(page, live)
    box = start_from_page(page, "forking_clock", delay=60, reap=True)
    port = live.server_detail("forking_clock")["port"]
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    rows = box.locator("table.tree tbody tr")
    expect(rows).to_have_count(4)
    for sock in socks:
        expect(box.locator("table.tree tbody")).to_contain_text(f"127.0.0.1:{sock.getsockname()[1]}")
    expect(box.locator("svg.tree-drawing g.node")).to_have_count(4)
    # Kill one child with its own button.
    first = socks[0]
    row = box.locator("table.tree tbody tr", has_text=f"127.0.0.1:{first.getsockname()[1]}")
    pid = row.locator("td").first.inner_text()
    row.locator("button", has_text="Kill").click()
    expect(rows).to_have_count(3)
    first.settimeout(10)
    assert first.recv(10) == b""
    expect(page.locator("#timeline")).to_contain_text(f"SIGKILL sent to PID {pid}")
    # Then the lecture's kill_processes(): every child at once, after asking.
    kill_all = box.locator("button[data-command=kill-children]")
    kill_all.click()
    expect(kill_all).to_have_text("Click again: kill every child")
    expect(rows).to_have_count(3)  # nothing happened yet
    kill_all.click()
    expect(rows).to_have_count(1)
    expect(page.locator("#timeline")).to_contain_text("SIGKILL to 2 children of forking_clock")
    for sock in socks:
        sock.close()


def test_a_zombie_is_shown_as_a_zombie(page, live):
    open_as_instructor(page, live)
    box = start_from_page(page, "forking_clock", delay=0, reap=False)
    port = live.server_detail("forking_clock")["port"]
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"What is the time?".ljust(25))
        wait_for(lambda: sock.recv(25), what="the answer")
    zombie_row = box.locator("table.tree tbody tr.zombie")
    expect(zombie_row).to_have_count(1)
    expect(zombie_row.locator("td.status")).to_have_text("zombie")
    expect(zombie_row.locator("button")).to_have_count(0)  # nothing left to kill
    expect(box.locator("svg.tree-drawing g.node.zombie")).to_have_count(1)
    expect(box.locator(".zombie-help")).to_be_visible()


def test_reaping_on_makes_children_disappear(page, live):
    open_as_instructor(page, live)
    box = start_from_page(page, "forking_clock", delay=0, reap=True)
    port = live.server_detail("forking_clock")["port"]
    sock = socket.create_connection(("127.0.0.1", port))
    expect(box.locator("table.tree tbody tr")).to_have_count(2)
    sock.close()
    expect(box.locator("table.tree tbody tr")).to_have_count(1)


def test_fork_demo_by_its_fork_and_quit_buttons(page, live):
    open_as_instructor(page, live)
    box = start_from_page(page, "fork_demo")
    expect(box.locator("table.tree tbody tr.zombie")).to_have_count(1)  # the fork at start
    box.get_by_role("button", name="Fork (Enter)").click()
    expect(box.locator("pre.console")).to_contain_text("hello from child")
    expect(box.locator("table.tree tbody tr.zombie")).to_have_count(2)  # then Enter's
    box.get_by_role("button", name="Quit (q)").click()
    expect(box.locator("[data-field=state]")).to_have_text("EXITED")
    expect(box.locator("[data-field=exit]")).to_have_text("0")


def test_viewer_sees_live_changes_but_has_no_controls(page, live):
    open_as_viewer(page, live)
    expect(page.locator("[data-command]")).to_have_count(0)
    expect(page.locator("#stop-all")).to_have_count(0)
    live.start_server("web")
    expect(card(page, "web").locator("[data-field=state]")).to_have_text("RUNNING")
    status = page.evaluate(
        """async () => {
            const csrf = document.querySelector('meta[name="csrf-token"]').content;
            const r = await fetch('/api/servers/web/stop', {method: 'POST', headers: {'X-CSRF-Token': csrf}});
            return r.status;
        }"""
    )
    assert status == 401
    assert live.server_detail("web")["state"] == "RUNNING"


def test_an_error_shows_in_the_page(page, live):
    open_as_instructor(page, live)
    box = unfold(page, "forking_clock")
    where = "(n) => { const r = n.getBoundingClientRect(); return [r.x + scrollX, r.y + scrollY, r.width, r.height]; }"
    before = box.evaluate(where)
    box.locator("input[name=delay]").fill("5000")
    box.locator("button[data-command=start]").click()
    # pinned to the card that caused it, over its edge: nothing moves
    notice = box.locator(".card-notice")
    expect(notice).to_contain_text("option delay must be between 0 and 120")
    assert box.evaluate(where) == before
    expect(page.locator("#notice")).to_be_hidden()


def test_program_output_is_text_never_html(page, live):
    open_as_instructor(page, live)
    box = start_from_page(page, "swap")
    port = live.server_detail("swap")["port"]
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"<img src=x onerror=window.pwned=1><script>window.pwned=2</script>\n")
        box.locator("details.console-block summary").click()
        expect(box.locator("pre.console")).to_contain_text("<img src=x onerror=window.pwned=1>")
    assert box.locator("pre.console img").count() == 0
    assert page.evaluate("() => window.pwned === undefined")


def test_the_page_resyncs_after_the_dashboard_restarts(page, tmp_path):
    board = Dashboard(str(tmp_path), TOKEN).start()
    try:
        open_as_instructor(page, board)
        board.stop()
        expect(page.locator("#conn")).not_to_have_text("live")
        board.start()
        expect(page.locator("#conn")).to_have_text("live")
        assert board.api("POST", "/api/servers/clock/start")[0] == 200
        expect(card(page, "clock").locator("[data-field=state]")).to_have_text("RUNNING")
        expect(page.locator("#role")).to_have_text("instructor")  # the session survived the restart
        board.stop_everything()
    finally:
        board.stop()


@pytest.mark.reliability("faults", "port already taken by another program (the page says who)")
def test_port_taken_is_fatal_and_the_page_names_the_holder(page, tmp_path, run_server, report):
    holder = run_server("clock", "--port", "0")
    board = Dashboard(str(tmp_path), TOKEN, ports={"clock": holder.port}).start()
    try:
        page.goto(f"{board.url}?token={TOKEN}")
        box = unfold(page, "clock")
        box.locator("button[data-command=start]").click()
        expect(box.locator("[data-field=state]")).to_have_text("FATAL")
        expect(box.locator("[data-field=reason]")).to_contain_text(
            f"port {holder.port} is in use by PID {holder.proc.pid}"
        )
        report["detail"] = "FATAL, holder named"
    finally:
        board.stop()
