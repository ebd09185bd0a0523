"""A smoke run of bench/doing.py at tiny sizes, so its code cannot rot; the figures are
only printed by the bench, never judged here."""

from bench import doing


def test_the_doing_benchmarks_run_end_to_end_at_tiny_sizes():
    results = doing.run(quick=True)
    five = results["doing_cost"]["5"]
    assert sum(five["states"].values()) == 5
    assert set(five["states"]) <= {"poll", "ppoll"}  # idle children wait for their client's question
    assert five["on_cpu_pct"] > 0 and five["first_tick_ms"] > 0
    assert five["watcher_on_cpu_pct"] > 0 and five["watcher_off_cpu_pct"] > 0
    stack = results["stack_ms"]
    assert stack["n"] == 2 and 0 < stack["median"] <= stack["p95"]
