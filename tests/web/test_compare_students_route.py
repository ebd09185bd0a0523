"""The comparison of two students' servers through the lecture hall's route: the two are
named in `servers`, anything else is refused in a sentence, and the run goes on stage."""

import os

from tests.core.check_support import SOLUTIONS
from tests.helpers import BEARER, manager_of, wait_for

ZOMBIES = {
    "file": os.path.join(SOLUTIONS, "forking_clock_zombies.py"),
    "exercise": "forking_clock",
    "name": "a",
}
REAPS = {
    "file": os.path.join(SOLUTIONS, "forking_clock_keeps_copy.py"),
    "exercise": "forking_clock",
    "name": "b",
}


def test_the_students_comparison_takes_two_servers_and_goes_on_stage(app_factory):
    app = app_factory(serve=[ZOMBIES, REAPS])
    client = app.test_client()
    listed = client.get("/api/comparisons").get_json()["comparisons"]
    students = next(c for c in listed if c["name"] == "students")
    assert [choice["name"] for choice in students["choices"]] == ["a", "b"]

    def run(body, name="students"):
        answer = client.post(f"/api/comparisons/{name}/run", json=body, headers=BEARER)
        return answer.status_code, answer.get_json()

    assert run({"servers": "a"}) == (400, {"error": "servers must be a list"})
    assert run({"servers": ["a", 3]}) == (
        400,
        {"error": "servers must be the names of two students' servers"},
    )
    status, refused = run({"servers": ["a", "b"]}, name="threads_processes")
    assert status == 400 and "only students takes servers" in refused["error"]
    assert run({"servers": ["b", "a"], "clients": 2}) == (
        202,
        {"running": "students", "clients": 2, "seconds": 0.0},
    )
    assert client.get("/api/stage").get_json()["kind"] == "compare"
    comparisons = app.extensions["forkwatch_classroom"].comparisons
    assert comparisons.wait(30)
    result = comparisons.last_run()
    assert result["state"] == "done" and [side["server"] for side in result["sides"]] == ["b", "a"]
    assert [side["zombies"] for side in result["sides"]] == [0, 2]
    wait_for(
        lambda: all(manager_of(app).servers[n].state.name == "STOPPED" for n in "ab"), 10, "both stopped"
    )
