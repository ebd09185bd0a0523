"""A fork bomb handed in as a student's solution, under the dashboard: its limits hold it
(its cgroup's pids.max where cgroups are in use, else RLIMIT_NPROC as any user but root)
while the dashboard's /healthz keeps answering, the bomb's own server still answers its
checks, and Stop ends all of it."""

import os

import pytest

from tests.core.check_support import SOLUTIONS
from tests.helpers import ALL_PORTS_FREE, wait_for, wait_state
from tests.web.floods import HealthProbe, baseline_p99, served
from tests.web.test_room import assert_healthz_kept_up

BOMB = os.path.join(SOLUTIONS, "fork_bomb.py")
CAP = 40


def held(manager, cap_kind):
    """What shows the bomb held at its cap: pids.max's refused forks, or (RLIMIT_NPROC)
    its tree's size, which stops growing near the cap."""
    detail = manager.server_detail("bomb")
    if cap_kind == "pids.max":
        pids = detail["pids"]
        return pids["refused"] > 100 and pids
    return detail["children"] >= CAP // 2 and {"current": detail["children"] + 1}


@pytest.mark.reliability(
    "faults", "a student's fork bomb under the dashboard's limits while /healthz is timed"
)
def test_a_students_fork_bomb_is_held_by_its_limits_and_the_dashboard_answers(app_factory, report):
    table = {"command": ["{python}", BOMB, "--port", "{port}"], "exercise": "clock", "max_processes": CAP}
    app = app_factory(servers={**ALL_PORTS_FREE, "bomb": table})
    manager = app.extensions["forkwatch"]
    cap_kind = manager.servers["bomb"].limits()["process_cap"]
    assert cap_kind is not None, "as root a process cap needs cgroups: RLIMIT_NPROC never applies to root"
    with served(app) as http:
        quiet = baseline_p99(http.server_port)
        with HealthProbe(http.server_port) as probe:
            manager.start("bomb")
            wait_state(manager, "bomb", "RUNNING")
            bomb = wait_for(lambda: held(manager, cap_kind), 20, f"the bomb held at its cap ({cap_kind})")
            timed = len(probe.ms)
            wait_for(lambda: len(probe.ms) >= timed + 50, 20, "50 answers of /healthz against the held bomb")
            assert manager.server_detail("bomb")["children"] + 1 <= CAP + 2
            manager.check("bomb")
            summary = wait_for(
                lambda: (s := manager.check_summary("bomb"))["state"] != "running" and s,
                30,
                "the check's end",
            )
        assert summary["state"] == "passed", summary
        manager.stop("bomb")
        wait_state(manager, "bomb", "STOPPED")
        assert_healthz_kept_up(probe, quiet)
    report["cases"] = 1
    report["detail"] = (
        f"{cap_kind} {CAP}: {bomb['current']} tasks at most, the bomb's server passed its checks; "
        f"/healthz {probe.figures()} (quiet p99 {quiet:.1f})"
    )
