"""A smoke run of the benchmarks at tiny sizes, so their code cannot rot. The figures
themselves are only printed (make bench), never judged here."""

import json

from bench import suite
from bench.helpers import summary


def test_the_benchmarks_run_end_to_end_at_tiny_sizes(tmp_path):
    out = tmp_path / "results.json"
    results = suite.run(quick=True, out=str(out))
    assert json.loads(out.read_text()) == results
    assert len(results["source"]["commit"]) == 40 and results["source"]["date"].startswith("20")
    for rows in results["watcher_cpu_pct"].values():
        assert all(row["cycle_ms"]["n"] == 20 and row["cycle_ms"]["max"] > 0 for row in rows)
    for key in (
        "fork_to_viewer_ms",
        "exit_to_viewer_ms",
        "baseline_1s_poll_ms",
        "fork_to_viewer_speedup",
        "watcher_cpu_pct",
        "viewers",
        "start_ready_ms",
        "stop_ms_100_children",
        "forking_burst",
        "doing_cost",
        "stack_ms",
        "recording_cost",
        "recording_open_and_seek",
        "scale_out",
    ):
        assert key in results, key
    for mechanism in results["machine"]["mechanisms"]:
        assert results["fork_to_viewer_ms"][mechanism]["n"] == 5
    cost = results["recording_cost"]
    assert cost["fork_to_viewer_ms"]["on"]["n"] == cost["fork_to_viewer_ms"]["off"]["n"] == 10
    assert cost["size"]["forks"] == 10 and cost["size"]["bytes_per_1000_forks"] > 0
    assert results["recording_open_and_seek"]["ms"]["open_and_seek"]["n"] == 2
    burst = results["forking_burst"]
    assert (
        burst["forking_clock"]["answered"]
        + burst["forking_clock"]["refused"]
        + burst["forking_clock"]["lost"]
        == 20
    )
    scale = results["scale_out"]
    assert (
        scale["single_viewer"]["one_process_ms"]["n"] == scale["single_viewer"]["through_redis_ms"]["n"] == 3
    )
    layouts = [
        (row["workers"], row["viewers"], row["latency_ms"]["n"], row["one_process_ms"]["n"])
        for row in scale["fan_out"]
    ]
    assert layouts == [(w, v, v * 2, v * 2) for w in (1, 2) for v in (4, 8)]  # every viewer, every fork
    assert all(row["p95_vs_one_process"] > 0 for row in scale["fan_out"])


def test_summary_percentiles_are_by_nearest_rank():
    assert summary([]) == {"n": 0}
    assert summary(list(range(1, 101))) == {"n": 100, "median": 50.5, "p95": 95, "p99": 99, "max": 100}
    assert summary([3, 1, 2]) == {"n": 3, "median": 2, "p95": 3, "p99": 3, "max": 3}  # of 3, p95 is the max
    twenty = summary(list(range(1, 21)))
    assert (twenty["p95"], twenty["p99"], twenty["max"]) == (19, 20, 20)  # ceil(0.95 x 20) = the 19th
    assert summary([0.12345], digits=3)["median"] == 0.123


def test_one_section_runs_alone_with_its_own_rounds():
    results = suite.run(quick=True, only=["lifecycle"], stop_rounds=2)
    assert results["stop_ms_100_children"]["n"] == 2
    assert results["start_ready_ms"]["n"] == 2
    assert "fork_to_viewer_ms" not in results and "forking_burst" not in results
