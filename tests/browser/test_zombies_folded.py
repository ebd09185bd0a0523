"""Many zombies on the page: past 50 they are one row with their count, live processes
keep their rows, and the PIDs come when asked — whether the zombies arrived one by one
or folded in the snapshot of a page opened later."""

import pytest
from playwright.sync_api import expect

from tests.helpers import card, open_as_viewer, wait_for
from tests.web.test_room import fork_flood

pytestmark = pytest.mark.browser


def test_eighty_zombies_are_one_row_with_their_pids_on_demand(page, live):
    open_as_viewer(page, live)
    info = live.start_server("forking_clock", {"delay": 0, "max_children": 200})
    fork_flood(info["port"], 80, threads=8)
    wait_for(lambda: live.server_detail("forking_clock")["zombies"] == 80, 15, "80 zombies")
    zombies = sorted(p["pid"] for p in live.server_detail("forking_clock")["tree"] if p["status"] == "zombie")
    for opened in ("live", "from the snapshot"):
        if opened == "from the snapshot":
            open_as_viewer(page, live)
        box = card(page, "forking_clock")
        folded = box.locator("table.tree tbody tr.folded")
        expect(folded).to_contain_text("80 zombies")
        expect(box.locator("table.tree tbody tr")).to_have_count(2)  # the server, and the zombies' row
        expect(box.locator("[data-field=children]")).to_have_text("80")
        folded.locator("button[data-zombies]").click()
        expect(folded.locator(".zombie-pids")).to_have_text(": " + " ".join(map(str, zombies)))
