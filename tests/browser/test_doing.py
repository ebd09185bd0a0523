"""What each process is doing, in a real browser, live and without reload: the forking
server's parent in accept() and its children counting their delay down, then in recv();
the clock server polling (serve_forever) or waiting once (handle_request); a child's code
pane at its sleep line; the instructor showing it to the class."""

import re
import socket

import pytest
from playwright.sync_api import expect

from supervisor.core.doing import SERVE_FOREVER_SENTENCE
from tests.helpers import card, open_as_instructor, open_as_viewer, wait_for

pytestmark = pytest.mark.browser

COUNTDOWN = r"sleeping in sleep\(\) — (\d+) s of its 10 s delay left"


def row(box, pid):
    return box.locator(f"table.tree tbody tr[data-pid='{pid}']")


def node(box, pid):
    return box.locator(f"svg.tree-drawing g.node[data-pid='{pid}']")


def children_of(board, name, count):
    detail = wait_for(
        lambda: len((d := board.server_detail(name))["tree"]) == count + 1 and d, 10, f"{count} children"
    )
    return [p["pid"] for p in detail["tree"] if p["pid"] != detail["pid"]]


def test_the_lectures_forking_server_with_three_clients(page, live):
    """The lecture's 10 s delay: the parent waits in accept(), each child counts its delay
    down on the page, then waits in recv() for its client's question — seen by a viewer."""
    open_as_viewer(page, live)
    info = live.start_server("forking_clock", {"delay": 10})
    box = card(page, "forking_clock")
    parent = f"waiting for a client in accept() on :{info['port']}"
    expect(row(box, info["pid"]).locator("td.doing")).to_have_text(parent)
    expect(node(box, info["pid"])).to_have_attribute("data-activity", "accept")
    expect(node(box, info["pid"]).locator("title")).to_contain_text(parent)
    expect(box.locator("ul.legend")).to_be_visible()
    expect(box.locator("ul.legend li")).to_have_count(8)
    expect(card(page, "web").locator("ul.legend")).to_be_hidden()  # no processes, no legend
    socks = [socket.create_connection(("127.0.0.1", info["port"])) for _ in range(3)]
    try:
        pids = children_of(live, "forking_clock", 3)
        first = {}
        for pid in pids:
            doing = row(box, pid).locator("td.doing")
            expect(doing).to_have_text(re.compile(COUNTDOWN))
            first[pid] = int(re.match(COUNTDOWN, doing.inner_text()).group(1))
            expect(node(box, pid)).to_have_attribute("data-activity", "sleep")
            expect(node(box, pid).locator("circle.countdown")).to_have_count(1)
        for pid in pids:  # counting down, live
            lower = "|".join(str(n) for n in range(1, first[pid]))
            expect(row(box, pid).locator("td.doing")).to_have_text(
                re.compile(COUNTDOWN.replace(r"(\d+)", f"({lower})")), timeout=4000
            )
        for sock in socks:
            peer = f"127.0.0.1:{sock.getsockname()[1]}"
            expect(box.locator("table.tree tbody tr", has_text=peer).locator("td.doing")).to_have_text(
                f"waiting in recv() for {peer}'s question", timeout=12000
            )
        for pid in pids:
            expect(node(box, pid)).to_have_attribute("data-activity", "recv")
            expect(node(box, pid).locator("circle.countdown")).to_have_count(0)
    finally:
        for sock in socks:
            sock.close()


def test_the_clock_server_polls_in_serve_forever_and_waits_once_in_handle_request(page, live):
    open_as_viewer(page, live)
    box = card(page, "clock")
    info = live.start_server("clock")
    expect(row(box, info["pid"]).locator("td.doing")).to_have_text(SERVE_FOREVER_SENTENCE)
    expect(node(box, info["pid"])).to_have_attribute("data-activity", "poll")
    assert live.api("POST", "/api/servers/clock/stop")[0] == 200
    expect(box.locator("[data-field=state]")).to_have_text("STOPPED")
    once = live.start_server("clock", {"once": True})
    expect(row(box, once["pid"]).locator("td.doing")).to_have_text(
        f"waiting for a client in poll() on :{once['port']}"  # handle_request() polls without a timeout
    )
    expect(node(box, once["pid"])).to_have_attribute("data-activity", "accept")


def test_the_status_column_follows_a_stop_and_a_continue(page, live):
    """A SIGSTOP makes no fork or exit: the once-a-second stats carry the new status."""
    open_as_instructor(page, live)
    info = live.start_server("forking_clock", {"delay": 60})
    box = card(page, "forking_clock")
    with socket.create_connection(("127.0.0.1", info["port"])):
        pid = children_of(live, "forking_clock", 1)[0]
        created = next(
            p["create_time"] for p in live.server_detail("forking_clock")["tree"] if p["pid"] == pid
        )
        expect(row(box, pid).locator("td.status")).to_have_text("sleeping")
        assert (
            live.api("POST", f"/api/processes/{pid}/signal", {"signal": "SIGSTOP", "create_time": created})[0]
            == 200
        )
        expect(row(box, pid).locator("td.status")).to_have_text("stopped")
        expect(row(box, pid).locator("td.doing")).to_contain_text(
            "stopped by a signal while sleeping in sleep()"
        )
        assert (
            live.api("POST", f"/api/processes/{pid}/signal", {"signal": "SIGCONT", "create_time": created})[0]
            == 200
        )
        expect(row(box, pid).locator("td.status")).to_have_text("sleeping")


def test_a_childs_code_pane_shows_its_sleep_line_and_the_class_follows(page, live, browser):
    open_as_instructor(page, live)
    viewer = browser.new_context().new_page()
    try:
        open_as_viewer(viewer, live)
        info = live.start_server("forking_clock", {"delay": 60})
        box = card(page, "forking_clock")
        with socket.create_connection(("127.0.0.1", info["port"])):
            pid = children_of(live, "forking_clock", 1)[0]
            expect(node(box, pid)).to_have_attribute("data-activity", "sleep")
            node(box, pid).click()
            pane = page.locator("#code-pane")
            where = re.compile(rf"^child {pid} is at line (\d+): time\.sleep\(delay\) in handle_client$")
            expect(pane.locator("[data-field=where]")).to_have_text(where)
            line = re.match(where, pane.locator("[data-field=where]").inner_text()).group(1)
            current = pane.locator("ol.code-lines li.current")
            expect(current).to_have_attribute("data-line", line)
            expect(current.locator("code")).to_have_text(re.compile(r"^\s+time\.sleep\(delay\)$"))
            expect(pane.locator("ol.code-lines li code", has_text="def handle_client(")).to_have_count(1)
            expect(pane.locator("[data-field=stack] li").first).to_contain_text("handle_client")
            expect(pane.locator("[data-field=doing]")).to_contain_text("sleeping in sleep()")
            viewer_pane = viewer.locator("#code-pane")
            expect(viewer_pane).to_be_hidden()
            pane.locator("button[data-pane=show]").click()
            expect(viewer_pane).to_be_visible()
            expect(viewer_pane).to_have_attribute("data-pid", str(pid))
            expect(viewer_pane.locator("[data-field=shown]")).to_be_visible()
            expect(viewer_pane.locator("ol.code-lines li.current code")).to_contain_text("time.sleep(delay)")
            expect(viewer_pane.locator("[data-pane=show]")).to_have_count(0)  # the instructor's alone
            pane.locator("button[data-pane=unshow]").click()
            expect(viewer_pane).to_be_hidden()
            row(card(viewer, "forking_clock"), info["pid"]).locator(
                "td.doing"
            ).click()  # viewers may look too
            expect(viewer_pane.locator("[data-field=where]")).to_contain_text(
                f"server {info['pid']} is at line"
            )
            expect(viewer_pane.locator("ol.code-lines li.current code")).to_contain_text("accept")
    finally:
        viewer.context.close()
