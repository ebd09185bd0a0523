"""No viewer can take the room down with zombies: the forking server's cap counts them, and
a thousand of them cost the idle dashboard little — learnt from exit events, not re-read
every 100 ms; folded into a count in the snapshot, the page and `stats`, their PIDs on
demand; the API's tree keeps every row."""

import json
import time

import psutil
import pytest

from tests.helpers import wait_for
from tests.web.floods import RawSocketIO
from tests.web.test_room import fork_flood, keep_reading


def zombies_of(live, name):
    tree = live.server_detail(name)["tree"]
    return [p for p in tree if p["status"] == "zombie"]


@pytest.mark.reliability("floods", "300 clients of the forking server without reaping, at its default cap")
def test_zombies_stop_at_the_servers_cap_with_a_sentence(live, report):
    info = live.start_server("forking_clock", {"delay": 0})
    answers = fork_flood(info["port"], 300, threads=10)
    assert answers == {
        "the time": 100,
        "server busy: 100 children not yet reaped — turn on reaping or Stop": 200,
    }
    wait_for(lambda: len(zombies_of(live, "forking_clock")) == 100, 15, "100 zombies")
    report["cases"] = 300
    report["detail"] = (
        "zombies capped at 100 (the default --max-children); 200 clients got `server busy: 100 children not "
        "yet reaped — turn on reaping or Stop`"
    )


@pytest.mark.reliability(
    "floods", "1,000 zombies of the forking server, then 3 s of an idle dashboard with a viewer"
)
def test_a_thousand_zombies_cost_the_idle_dashboard_little(live, report):
    info = live.start_server("forking_clock", {"delay": 0, "max_children": 2000})
    fork_flood(info["port"], 1000)
    wait_for(lambda: len(zombies_of(live, "forking_clock")) == 1000, 30, "1,000 zombies in the API's tree")
    viewer = RawSocketIO(live.port, source="127.0.0.9")
    reader = keep_reading(viewer)
    snapshot = next(t for t in viewer.received if t.startswith('42/live,["snapshot"'))
    dashboard = psutil.Process(live.proc.pid)
    cpu_before, began = sum(dashboard.cpu_times()[:2]), time.monotonic()
    seen_before = len(viewer.received)
    time.sleep(3.0)  # measuring the idle dashboard for a while, not waiting for something
    cpu = (sum(dashboard.cpu_times()[:2]) - cpu_before) / (time.monotonic() - began) * 100
    stats = [t for t in viewer.received[seen_before:] if t.startswith('42/live,["stats"')]
    stats_per_s = sum(len(t) for t in stats) / 3.0
    viewer.close()
    reader.join(10)
    with_page = len(live.page("/"))
    whole = json.loads(snapshot[len("42/live,") :])[1]
    servers = whole["servers"]
    # the consoles' last 200 lines each and the timeline's last 200 events are in every
    # snapshot whatever the tree: bounded apart
    consoles = sum(len(json.dumps(s["output"])) for s in servers) + len(json.dumps(whole["events"]))
    figures = (
        f"cpu {cpu:.1f} %, snapshot {len(snapshot)} B of which consoles and timeline {consoles} B, page {with_page} B, "
        f"stats {stats_per_s:.0f} B/s"
    )
    assert cpu < 10, figures
    assert len(snapshot) - consoles < 40_000 and with_page - consoles < 80_000 and stats_per_s < 2_000, (
        figures
    )
    folded = next(s for s in servers if s["name"] == "forking_clock")
    assert folded["zombies"] == 1000 and folded["zombies_folded"] and len(folded["tree"]) == 1
    status, page = live.api("GET", "/api/servers/forking_clock/zombies", token=False)
    assert status == 200 and len(page["zombies"]) == 1000
    report["cases"] = 1000
    report["detail"] = (
        f"idle dashboard {cpu:.1f} % of a core; snapshot {len(snapshot) / 1024:.1f} KiB "
        f"({consoles / 1024:.1f} KiB of it the consoles' last lines and the timeline), page "
        f"{with_page / 1024:.1f} KiB, stats {stats_per_s:.0f} B/s per viewer; the 1,000 PIDs on demand "
        "(GET …/zombies) and in the API's tree"
    )
