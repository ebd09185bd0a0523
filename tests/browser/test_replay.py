"""Recordings replayed in a real browser: a real demo recorded by a live dashboard, played
back with the same forks, exits and console lines at the same times, scrubbed, and saved
as one page that replays from disk with the network off."""

import re
import socket
import time
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.helpers import card, open_as_instructor, open_as_viewer, wait_for

pytestmark = pytest.mark.browser

SERVER = "forking_clock"
EARLY, LATE = -0.05, 0.35  # s: a replayed event may show a tick and a frame after its time, never before
OBSERVE = """() => {
  const seen = { rows: {}, timeline: {}, lines: [], pressed: null };
  document.getElementById("play").addEventListener("click", () => { seen.pressed = performance.now(); }, { capture: true });
  const box = document.getElementById("card-forking_clock");
  const observer = new MutationObserver((mutations) => {
    const now = performance.now();
    for (const mutation of mutations) {
      for (const node of mutation.addedNodes) {
        if (node.nodeType !== 1) continue;
        if (node.matches("tr[data-pid]") && !(node.dataset.pid in seen.rows)) seen.rows[node.dataset.pid] = now;
        if (node.matches("pre.console span")) seen.lines.push([node.textContent.replace(/\\n$/, ""), now]);
        if (node.matches("#timeline li") && !(node.textContent in seen.timeline)) seen.timeline[node.textContent] = now;
      }
    }
  });
  observer.observe(box, { childList: true, subtree: true });
  observer.observe(document.getElementById("timeline"), { childList: true });
  window.seen = seen;
}"""


def api(board, path):
    return board.api("GET", path)[1]


def gone_text(texts, pid):
    """The timeline's line for the end of child pid (`child 7086 …`, `zombie 7086 …`)."""
    return next((text for text in texts if re.match(rf"(child|zombie) {pid} ", text)), None)


def held_child(board, peer):
    tree = api(board, f"/api/servers/{SERVER}")["tree"]
    return next((proc for proc in tree if proc["peer"] == peer), None)


@pytest.fixture(scope="module")
def demo(dashboard):
    """Two clients of the forking clock, whose children sleep a second before they read:
    the first asks and is answered, the second asks half a question and its child is
    killed; then Stop everything. What was recorded."""
    began = time.time()
    info = dashboard.start_server(SERVER, {"delay": 1, "reap": True})
    address = ("127.0.0.1", info["port"])
    with (
        socket.create_connection(address, timeout=10) as first,
        socket.create_connection(address, timeout=10) as second,
    ):
        first.sendall(b"What is the time?".ljust(25))
        second.sendall(b"What")  # its child will wait for the rest
        child = wait_for(
            lambda: held_child(dashboard, f"127.0.0.1:{second.getsockname()[1]}"), what="its child"
        )
        assert first.recv(100)  # after the first child's second of sleep
        kill = {"signal": "SIGKILL", "create_time": child["create_time"]}
        assert dashboard.api("POST", f"/api/processes/{child['pid']}/signal", kill)[0] == 200
        wait_for(
            lambda: gone_text(
                [e["text"] for e in api(dashboard, "/api/events")["events"] if e["kind"] == "exit"],
                child["pid"],
            ),
            what="the killed child's exit",
        )
    dashboard.stop_everything()

    def recorded():
        found = [r for r in api(dashboard, "/api/recordings")["recordings"] if r["started"] >= began]
        return len(found) == 1 and not found[0]["recording"] and found[0]

    meta = wait_for(recorded, 10.0, "the demo's recording to end")
    events = api(dashboard, f"/api/recordings/{meta['id']}/events?limit=20000")["events"]
    timeline = [e for e in events if e["kind"] == "event"]
    return {
        "meta": meta,
        "events": events,
        "forks": {
            e["payload"]["pid"]: e["t"]
            for e in events
            if e["kind"] == "proc" and e["payload"]["kind"] == "fork"
        },
        "exits": {e["payload"]["text"]: e["t"] for e in timeline if e["payload"]["kind"] == "exit"},
        "lines": [(line, e["t"]) for e in events if e["kind"] == "output" for line in e["payload"]["lines"]],
        "killed": child["pid"],
        "console": api(dashboard, f"/api/servers/{SERVER}/output?tail=5000")["lines"],
    }


def recorded_state(demo, t):
    """What the page should show at t, folded from the recorded events alone: the server's
    state, its processes {pid: status}, its console."""
    state, procs, console = None, {}, []
    for event in demo["events"]:
        if event["t"] > t:
            break
        kind, item = event["kind"], event["payload"]
        if kind == "server" and item["name"] == SERVER:
            state = item["state"]
            if state == "STARTING":
                procs, console = {}, []
            if state not in ("STARTING", "RUNNING", "STOPPING"):
                procs = {}
            elif item["pid"]:
                procs.setdefault(item["pid"], "running")
        elif kind == "proc" and item["server"] == SERVER:
            if item["kind"] == "exit":
                procs.pop(item["pid"], None)
            else:
                procs[item["pid"]] = item["status"]
        elif kind == "output" and item["server"] == SERVER:
            console += item["lines"]
    return state, procs, console


def shown_state(box):
    state, rows, console = box.evaluate(
        """(box) => [
            box.querySelector("[data-field=state]").textContent,
            [...box.querySelectorAll("table.tree tbody tr")].map((row) => [row.dataset.pid, row.classList.contains("zombie")]),
            box.querySelector("pre.console").textContent,
        ]"""
    )
    return state, {int(pid): zombie for pid, zombie in rows}, console


def expect_state_at(box, demo, t):
    """The page shows what the recording says at t: state, rows (zombies as zombies), console."""
    state, procs, console = recorded_state(demo, t)
    wanted = (
        state,
        {pid: status == "zombie" for pid, status in procs.items()},
        "".join(f"{line}\n" for line in console),
    )
    seen = {}

    def matches():
        seen["page"] = shown_state(box)
        return seen["page"] == wanted

    try:
        wait_for(matches, 5.0, "the page to show the recorded state")
    except AssertionError:
        raise AssertionError(
            f"at +{t - demo['meta']['started']:.3f} s the page shows {seen['page']}, the recording says {wanted}"
        ) from None


def open_replay(page, url):
    page.goto(url)
    expect(page.locator("body")).to_have_attribute("data-replay", "ready")
    return card(page, SERVER)


def assert_on_time(what, shown, recorded, speed, pressed, started):
    """A thing shown (shown - pressed) ms after play began, × speed, is at its recorded time
    (a faster replay is allowed the same lateness in real time, so more in the recording's)."""
    late = (shown - pressed) / 1000 * speed - (recorded - started)
    assert EARLY <= late <= LATE * max(1, speed / 2), f"{what} shown {late:+.3f} s from its recorded time"


def test_a_recorded_demo_replays_with_the_same_forks_exits_and_lines_at_the_same_times(page, dashboard, demo):
    meta = demo["meta"]
    assert len(demo["forks"]) == 2 and set(demo["exits"]) == {
        gone_text(demo["exits"], pid) for pid in demo["forks"]
    }
    recorded = [line for line, _ in demo["lines"]]
    assert recorded == demo["console"][-len(recorded) :]  # this run's lines, as the console showed them live
    box = open_replay(page, f"{dashboard.url}recordings/{meta['id']}")
    expect(box.locator("[data-field=state]")).to_have_text("STARTING")
    page.evaluate(OBSERVE)
    page.locator("#play").click()
    expect(page.locator("#play")).to_have_text("Pause")
    expect(page.locator("#play")).to_have_text("Play", timeout=meta["duration"] * 1000 + 10_000)
    seen = page.evaluate("() => window.seen")
    for pid, t in demo["forks"].items():
        assert_on_time(f"the fork of {pid}", seen["rows"][str(pid)], t, 1, seen["pressed"], meta["started"])
    for gone, t in demo["exits"].items():
        [shown] = [at for text, at in seen["timeline"].items() if text.endswith(gone)]
        assert_on_time(gone, shown, t, 1, seen["pressed"], meta["started"])
    assert [line for line, _ in seen["lines"]] == [line for line, _ in demo["lines"]]
    for (line, shown), (_, t) in zip(seen["lines"], demo["lines"], strict=True):
        assert_on_time(f"the line {line!r}", shown, t, 1, seen["pressed"], meta["started"])
    expect(box.locator("[data-field=state]")).to_have_text("STOPPED")
    expect(box.locator("table.tree tbody tr")).to_have_count(0)


def test_scrubbing_and_the_timeline_land_on_the_state_of_that_moment(page, dashboard, demo):
    meta, killed = demo["meta"], demo["killed"]
    answered = next(pid for pid in demo["forks"] if pid != killed)
    box = open_replay(page, f"{dashboard.url}recordings/{meta['id']}")
    timeline = {e["payload"]["text"]: e["t"] for e in demo["events"] if e["kind"] == "event"}

    page.locator("#marks .mark-kill").click()  # the kill: its child still there
    kill = timeline[f"SIGKILL sent to PID {killed} of {SERVER}"]
    expect_state_at(box, demo, kill)
    assert killed in recorded_state(demo, kill)[1]

    page.locator("#scrubber").press("End")
    expect_state_at(box, demo, meta["ended"])
    assert "SIGTERM received, closing server" in recorded_state(demo, meta["ended"])[2]

    gone = gone_text(demo["exits"], killed)
    assert gone.startswith(f"child {killed} killed by forkwatch")
    page.locator("#timeline li", has_text=gone).click()  # back to then
    expect_state_at(box, demo, timeline[gone])
    assert killed not in recorded_state(demo, timeline[gone])[1]
    expect(page.locator("#timeline li", has_text="stop everything")).to_have_count(0)  # not yet

    moment = demo["forks"][answered] + 0.5  # both children asleep
    page.evaluate(
        """(value) => {
            const scrubber = document.getElementById("scrubber");
            scrubber.value = String(value);
            scrubber.dispatchEvent(new Event("change"));
        }""",
        round((moment - meta["started"]) * 1000),
    )
    expect_state_at(box, demo, meta["started"] + round((moment - meta["started"]) * 1000) / 1000)
    assert answered in recorded_state(demo, moment)[1]

    page.locator("#scrubber").press("Home")
    expect_state_at(box, demo, meta["started"])
    titles = []
    for mark in page.locator("#marks .mark-fork").all():  # forks a few ms apart share one mark
        mark.click()
        titles.append(mark.get_attribute("title"))
        assert float(mark.get_attribute("data-t")) in [
            t for text, t in timeline.items() if " forked child " in text
        ]
        expect_state_at(box, demo, float(mark.get_attribute("data-t")))
    assert all(f"forked child {pid} " in " ".join(titles) for pid in demo["forks"])


def test_a_recording_put_on_stage_replays_in_every_viewers_page(page, dashboard, demo):
    """The instructor stages a recording (the hall's network failed, say): a viewer's page
    shows its replay page, player and all, in the stage; scrubbing there shows its state."""
    meta = demo["meta"]
    open_as_viewer(page, dashboard)
    assert dashboard.api("POST", "/api/stage", {"kind": "recording", "name": str(meta["id"])})[0] == 200
    try:
        expect(page.locator("#stage")).to_be_visible()
        frame = page.frame_locator("#stage iframe.stage-recording")
        expect(frame.locator("body")).to_have_attribute("data-replay", "ready")
        expect(frame.locator("#replay-title")).to_have_text(meta["title"])
        expect(frame.locator("a[href='/']")).to_have_count(0)  # no way out of the stage from inside it
        frame.locator("#scrubber").press("End")
        expect(frame.locator(f"#card-{SERVER} [data-field=state]")).to_have_text("STOPPED")
    finally:
        dashboard.api("POST", "/api/stage", {"kind": None, "name": None})
    expect(page.locator("#stage")).to_be_hidden()


def test_only_the_dashboard_itself_may_frame_a_replay_page(dashboard, demo):
    with urllib.request.urlopen(f"{dashboard.url}recordings/{demo['meta']['id']}", timeout=10) as response:
        assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
        assert "frame-ancestors 'self'" in response.headers["Content-Security-Policy"]
    with urllib.request.urlopen(dashboard.url, timeout=10) as response:
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_an_exported_page_replays_from_disk_with_the_network_off(browser, dashboard, demo, tmp_path):
    meta = demo["meta"]
    url = f"{dashboard.url}api/recordings/{meta['id']}/export?format=html"
    with urllib.request.urlopen(url, timeout=10) as response:
        saved = tmp_path / "lecture.html"
        saved.write_bytes(response.read())
    context = browser.new_context(offline=True)
    requested = []

    def only_the_file(route):
        requested.append(route.request.url)
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", only_the_file)
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(error))
        box = open_replay(page, saved.as_uri())
        page.evaluate(OBSERVE)
        page.locator("[data-speed='4']").click()
        page.locator("#play").click()
        expect(page.locator("#play")).to_have_text("Play", timeout=meta["duration"] * 1000 + 10_000)
        expect(box.locator("[data-field=state]")).to_have_text("STOPPED")
        seen = page.evaluate("() => window.seen")
        killed = demo["killed"]
        answered = next(pid for pid in demo["forks"] if pid != killed)
        for pid, t in demo["forks"].items():  # each child lives a second
            assert_on_time(
                f"the fork of {pid} at 4×", seen["rows"][str(pid)], t, 4, seen["pressed"], meta["started"]
            )
        for gone, t in demo["exits"].items():
            [shown] = [at for text, at in seen["timeline"].items() if text.endswith(gone)]
            assert_on_time(f"{gone} at 4×", shown, t, 4, seen["pressed"], meta["started"])
        assert [line for line, _ in seen["lines"]] == [line for line, _ in demo["lines"]]
        page.locator("#timeline li", has_text=f"{SERVER} forked child {answered} ").click()
        expect(box.locator(f"tr[data-pid='{answered}']")).to_have_count(1)
        assert errors == []
        assert [url for url in requested if not url.startswith("file://")] == []
    finally:
        context.close()


def test_the_instructor_renames_and_deletes_a_recording_from_the_list(page, dashboard):
    began = time.time()
    dashboard.start_server("clock")
    dashboard.stop_everything()
    meta = wait_for(
        lambda: next(
            (
                r
                for r in api(dashboard, "/api/recordings")["recordings"]
                if r["started"] >= began and not r["recording"]
            ),
            None,
        ),
        what="the clock's recording",
    )
    open_as_instructor(page, dashboard)
    page.locator("a[href='/recordings']").click()
    row = page.locator(f"tr[data-recording='{meta['id']}']")
    row.locator("[data-rename]").click()
    row.locator("input[name=title]").fill("The clock, once")
    row.locator("form.rename-form button").click()
    expect(row.locator("[data-field=title]")).to_have_text("The clock, once")
    assert api(dashboard, f"/api/recordings/{meta['id']}")["title"] == "The clock, once"
    row.locator("[data-delete]").click()
    expect(row.locator("[data-delete]")).to_have_text("Really delete?")
    assert dashboard.api("GET", f"/api/recordings/{meta['id']}")[0] == 200  # one click deletes nothing
    row.locator("[data-delete]").click()
    expect(row).to_have_count(0)
    assert dashboard.api("GET", f"/api/recordings/{meta['id']}")[0] == 404
