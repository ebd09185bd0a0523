"""Viewer workers in a real browser: a supervisor publishing to a real Redis, two
`forkwatch viewer` workers, and Chromium pages on each; a page behind a balancer whose
worker is killed."""

import signal
import socket

import pytest
from playwright.sync_api import expect

from bench.hall_processes import RedisServer
from tests.hall_support import Balancer, Hall
from tests.helpers import TOKEN, card, wait_for, wait_state

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def hall(tmp_path_factory, redis_server):
    hall = Hall(str(tmp_path_factory.mktemp("hall")), redis_server, channel="hall-browser")
    yield hall
    hall.stop()


def test_a_page_on_a_worker_sees_a_fork_made_through_the_supervisor_and_a_kill_from_another(
    hall, page, browser
):
    a, b = hall.workers
    page.goto(a.url)
    expect(page.locator("#conn")).to_have_text("live")
    expect(page.locator("#role")).to_have_text("viewer")
    expect(page.locator("#feed")).to_be_hidden()
    instructor = browser.new_context().new_page()
    socks = []
    try:
        instructor.goto(f"{b.url}?token={TOKEN}")
        expect(instructor.locator("#role")).to_have_text("instructor")
        assert TOKEN not in instructor.url
        expect(instructor.locator("#conn")).to_have_text("live")
        info = hall.supervisor.start_server("forking_clock", {"delay": 60, "reap": True})
        socks = [socket.create_connection(("127.0.0.1", info["port"])) for _ in range(2)]
        peers = [f"127.0.0.1:{s.getsockname()[1]}" for s in socks]
        rows = card(page, "forking_clock").locator("table.tree tbody tr")
        expect(rows).to_have_count(3)  # the server and its two children, on worker A's page
        for peer in peers:
            expect(card(page, "forking_clock").locator("table.tree tbody")).to_contain_text(peer)
        # The instructor's Kill button on worker B's page: the supervisor kills the child.
        target = card(instructor, "forking_clock").locator("table.tree tbody tr", has_text=peers[0])
        pid = target.locator("td").first.inner_text()
        target.locator("button", has_text="Kill").click()
        expect(rows).to_have_count(2)  # …and worker A's page sees it gone
        socks[0].settimeout(10)
        assert socks[0].recv(10) == b""
        expect(page.locator("#timeline")).to_contain_text(f"SIGKILL sent to PID {pid}")
        tree = wait_for(lambda: hall.supervisor.server_detail("forking_clock")["tree"], what="the tree")
        assert str(pid) not in {str(p["pid"]) for p in tree}
    finally:
        for sock in socks:
            sock.close()
        instructor.context.close()
        hall.supervisor.stop_everything()


def test_the_page_says_when_live_updates_pause_and_catches_up_when_they_return(tmp_path, page):
    redis = RedisServer(str(tmp_path)).start()
    hall = None
    try:
        hall = Hall(str(tmp_path), redis, channel="outage-browser", workers=1)
        page.goto(hall.workers[0].url)
        expect(page.locator("#conn")).to_have_text("live")
        banner = page.locator("#feed")
        expect(banner).to_be_hidden()
        redis.stop()
        expect(banner).to_have_text("live updates paused: message queue unreachable")
        expect(banner).to_be_visible()
        hall.supervisor.start_server("clock")  # meanwhile: the page cannot hear of it
        wait_state(hall.supervisor, "clock", "RUNNING")
        assert card(page, "clock").locator("[data-field=state]").text_content() == "STOPPED"
        redis.start()
        expect(banner).to_be_hidden(timeout=30_000)
        expect(card(page, "clock").locator("[data-field=state]")).to_have_text(
            "RUNNING"
        )  # the fresh snapshot
        expect(page.locator("#timeline")).to_contain_text("clock is ready on port")
    finally:
        if hall is not None:
            hall.supervisor.stop_everything()
            hall.stop()
        redis.stop()


def test_a_page_whose_worker_is_killed_carries_on_through_the_balancer_on_another(hall, page):
    first, second = hall.add_worker(), hall.add_worker()
    balancer = Balancer([first.port, second.port])
    try:
        page.goto(balancer.url)
        expect(page.locator("#conn")).to_have_text("live")
        assert set(balancer.routed) == {first.port}  # the page, its files and its socket
        hall.workers.remove(first)
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
        wait_for(lambda: second.port in balancer.routed, 20.0, "the page's socket to reconnect")
        expect(page.locator("#conn")).to_have_text("live")
        hall.supervisor.start_server("clock")  # …and the other worker's events reach it
        expect(card(page, "clock").locator("[data-field=state]")).to_have_text("RUNNING")
        expect(page.locator("#timeline")).to_contain_text("clock is ready on port")
    finally:
        balancer.close()
        if second in hall.workers:
            hall.workers.remove(second)
            second.stop()
        hall.supervisor.stop_everything()
