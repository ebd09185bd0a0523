"""The lecture as a student sees it in a real browser: Ctrl-C that runs kill_processes() with
its lines and each child dying, fork clients drawn beside the children that serve them,
exits that were meant shown calm, and a console that is there for a page opened late."""

import re

import psutil
import pytest
from playwright.sync_api import expect

from tests.helpers import (
    card,
    descendants_of,
    open_as_instructor,
    open_as_viewer,
    running_dashboard,
    start_from_page,
    wait_for,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    """A dashboard of this module's own: these tests end servers as EXITED (finished or
    crashed) and read consoles from their first line, which the session's shared dashboard
    must not be left with or have from other tests."""
    yield from running_dashboard(tmp_path_factory, "lecture")


@pytest.fixture
def lecture(board):
    yield board
    board.stop_everything()


CALM = "rgb(26, 95, 180)"  # --calm: a program that ended as it meant to
BAD = "rgb(179, 38, 30)"  # --bad: a crash


def lecture_processes(board):
    """The dashboard's descendants that run a lecture program (its watchdog is not one)."""
    found = []
    for proc in descendants_of(board.proc.pid):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and any(
                part.startswith("servers.") for part in proc.cmdline()
            ):
                found.append(proc.pid)
        except psutil.NoSuchProcess:
            continue
    return found


def local_address(pid):
    """The address of a fork client's connection, read by psutil (not by forkwatch)."""
    conns = [c for c in psutil.Process(pid).net_connections(kind="tcp") if c.raddr]
    return f"{conns[0].laddr.ip}:{conns[0].laddr.port}" if conns else None


def test_ctrl_c_with_three_clients_runs_kill_processes_and_leaves_nothing(page, lecture):
    live = lecture
    open_as_instructor(page, live)
    box = start_from_page(page, "forking_clock", delay=6, reap=False)  # Ctrl-C comes while they wait
    box.locator(".client-panel input[name=count]").fill("3")
    box.locator("button[data-play=spawn]").click()

    # Each client is drawn beside the child that serves it: its address is that child's peer.
    clients = box.locator("svg.tree-drawing g.client")
    expect(clients).to_have_count(3)
    # Each child's step in the lecture's words (client is blocked for 6 seconds ...); the
    # count down is the kernel's sleep badge, or the label's own when there is none.
    expect(box.locator("svg.tree-drawing text.step-blocked")).to_have_count(3)
    expect(box.locator("svg.tree-drawing text.step-blocked").first).to_have_text(
        re.compile(r"^blocked( [1-6]s)?$")
    )
    pairs = {}
    for i in range(3):
        client = int(clients.nth(i).get_attribute("data-pid"))
        child = int(clients.nth(i).get_attribute("data-serves"))
        row = box.locator(f"table.tree tbody tr[data-pid='{child}']")
        expect(row).to_contain_text(wait_for(lambda client=client: local_address(client), what="the address"))
        pairs[child] = client
    clients_console = box.locator("pre.clients-console")
    for client in pairs.values():
        expect(clients_console).to_contain_text(f"[{client}] client is connected")
    timeline = page.locator("#timeline")
    for child in pairs:
        expect(timeline).to_contain_text(f"forked child {child} to serve")
        expect(timeline).to_contain_text(f"child {child} is blocked for 6 seconds before it answers")
    expect(timeline).to_contain_text(f"(fork client {next(iter(pairs.values()))})")

    box.locator("button[data-command=interrupt]").click()
    console = box.locator("pre.server-console")
    expect(console).to_contain_text("ctrl c pressed, closing server")
    for child in pairs:
        expect(console).to_contain_text(f"-> killing process {child}")
        expect(timeline).to_contain_text(
            f"child {child} killed by the server's kill_processes() (-> killing process {child}) and reaped"
        )
    active = re.findall(r"active processes : \[([\d, ]+)\]", console.text_content())[-1]  # this run's
    assert sorted(int(pid) for pid in active.split(", ")) == sorted(pairs)
    expect(timeline).to_contain_text("Ctrl-C: SIGINT to forking_clock")
    expect(box.locator("[data-field=state]")).to_have_text("EXITED")
    expect(box).to_have_attribute("data-exit-class", "finished")
    expect(box.locator("[data-field=state]")).to_have_css("color", CALM)
    expect(box.locator("[data-field=reason]")).to_have_text(
        "closed on Ctrl-C (SIGINT): it ran its own shutdown and exited with code 0"
    )
    expect(box.locator("svg.tree-drawing g.node")).to_have_count(0)
    for client in pairs.values():  # each client sees its child gone (with its question unread: a reset)
        expect(clients_console).to_contain_text(
            re.compile(rf"\[{client}\] (server closed the connection|error: .*Connection reset by peer)"),
            timeout=15_000,  # a client that was served sleeps up to 10 s before it asks again
        )
    wait_for(lambda: not lecture_processes(live), 15.0, "no server, child or client left")


def test_once_and_q_end_as_finished_and_a_crash_stays_red(page, lecture):
    live = lecture
    open_as_instructor(page, live)
    clock = start_from_page(page, "clock", once=True)
    clock.locator("button[data-play=ask]").click()
    expect(clock.locator("[data-field=state]")).to_have_text("EXITED")
    expect(clock).to_have_attribute("data-exit-class", "finished")
    expect(clock.locator("[data-field=reason]")).to_have_text("served one request, as handle_request() does")
    expect(clock.locator("[data-field=state]")).to_have_css("color", CALM)
    expect(page.locator("#timeline li.k-finished").first).to_contain_text(
        "clock finished: served one request, as handle_request() does"
    )

    demo = start_from_page(page, "fork_demo")
    demo.get_by_role("button", name="Quit (q)").click()
    expect(demo.locator("[data-field=state]")).to_have_text("EXITED")
    expect(demo).to_have_attribute("data-exit-class", "finished")
    expect(demo.locator("[data-field=reason]")).to_have_text("quit on q, as fork.py does")

    web = start_from_page(page, "web")
    psutil.Process(live.server_detail("web")["pid"]).kill()  # a signal nobody here sent
    expect(web.locator("[data-field=state]")).to_have_text("EXITED")
    expect(web).to_have_attribute("data-exit-class", "crash")
    expect(web.locator("[data-field=state]")).to_have_css("color", BAD)
    expect(page.locator("#timeline li.k-crash").first).to_contain_text("web crashed: was killed by SIGKILL")


def test_a_page_opened_late_shows_the_console_and_a_restart_keeps_it(page, lecture):
    info = lecture.start_server("fork_demo")
    for _ in range(2):
        assert lecture.api("POST", "/api/servers/fork_demo/stdin", {"line": ""})[0] == 200

    def hellos():
        lines = lecture.api("GET", "/api/servers/fork_demo/output?tail=200")[1]["lines"]
        return [line for line in lines if line.startswith(f"hello from parent {info['pid']}")]

    wait_for(lambda: len(hellos()) == 3, what="three children forked")
    open_as_viewer(page, lecture)
    console = card(page, "fork_demo").locator("pre.server-console")
    for line in hellos():
        expect(console).to_contain_text(line)
        expect(console).to_contain_text(f"hello from child {line.split()[-1]}")
    mine = console.locator("span", has_text=f"hello from parent {info['pid']}")
    expect(mine).to_have_count(3)
    page.reload()  # a reconnect: the snapshot again, each line once
    expect(page.locator("#conn")).to_have_text("live")
    expect(mine).to_have_count(3)
    assert lecture.api("POST", "/api/servers/fork_demo/restart")[0] == 202
    again = wait_for(
        lambda: (
            (now := lecture.server_detail("fork_demo"))["state"] == "RUNNING"
            and now["pid"] != info["pid"]
            and now
        ),
        what="fork_demo running again",
    )
    expect(console).to_contain_text(f"──── fork_demo started again as PID {again['pid']} ────")
    expect(console).to_contain_text(f"hello from parent {again['pid']}")
    expect(mine).to_have_count(3)  # the first run's lines are kept
