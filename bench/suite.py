"""forkwatch's benchmarks. Each figure is a ratio against a baseline measured in the same
run where one exists; nothing here passes or fails.

    python -m bench                     # the full run (a few minutes), writes bench/results.json
    python -m bench --quick             # tiny sizes: a smoke run
    python -m bench --only lifecycle    # one section (latency, watcher, doing, viewers,
                                        # lifecycle, burst, recording, scale_out), printed only
"""

import argparse
import datetime
import json
import os
import platform
import subprocess

from bench.burst import section_burst
from bench.doing import section_doing
from bench.fanout import section_viewers
from bench.helpers import ROOT
from bench.latency import section_latency
from bench.lifecycle import section_lifecycle
from bench.recording_cost import section_recording
from bench.scale_out import section_scale_out
from bench.watching import section_watcher
from supervisor.proc.host import raise_open_files_limit
from supervisor.proc.sources import MECHANISMS, choose_source


def provenance():
    """The commit measured (and whether the work tree differed from it), and when."""

    def git(*args):
        try:
            return subprocess.run(
                ["git", *args], capture_output=True, text=True, cwd=ROOT, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {
        "commit": git("rev-parse", "HEAD") or None,
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def machine():
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "mechanisms": [m for m in MECHANISMS if _available(m)],
    }


def _available(mechanism):
    try:
        source = choose_source(mechanism)
    except OSError:
        return False
    source.close()
    return source.name == mechanism


# --- the run ----------------------------------------------------------------------------------------


def sizes_for(quick):
    return {
        "rounds": 5 if quick else 60,
        "cost_children": (0, 5) if quick else (0, 100, 1000),
        "cost_seconds": 0.5 if quick else 10.0,
        "viewers": (1, 3) if quick else (1, 10, 50, 100, 200),
        "forks_each": 2 if quick else 10,
        "viewer_samples": 2 if quick else 100,
        "scale_viewers": (4, 8) if quick else (200, 400),
        "scale_workers": (1, 2) if quick else (1, 2, 4),
        "scale_single_rounds": 3 if quick else 60,
        "start_rounds": 2 if quick else 20,
        "stop_rounds": 1 if quick else 20,
        "stop_children": 5 if quick else 100,
        "burst": 20 if quick else 500,
        "doing_children": (5,) if quick else (100, 1000),
        "stack_reads": 2 if quick else 20,
        "recording_rounds": 10 if quick else 300,
        "recording_seconds": 60 if quick else 3600,
        "recording_seeks": 2 if quick else 10,
    }


SECTIONS = {
    "latency": section_latency,
    "watcher": section_watcher,
    "doing": section_doing,
    "viewers": section_viewers,
    "lifecycle": section_lifecycle,
    "burst": section_burst,
    "recording": section_recording,
    "scale_out": section_scale_out,
}


def run(quick=False, out=None, only=None, **size_overrides):
    """Run the sections named in `only` (default: all, in order) and return the figures;
    `size_overrides` replace single sizes (e.g. stop_rounds=20)."""
    sizes = {**sizes_for(quick), **size_overrides}
    raise_open_files_limit()
    results = {"source": provenance(), "machine": machine(), "quick": quick}
    print(f"machine: {results['machine']}", flush=True)
    for name, section in SECTIONS.items():
        if only is None or name in only:
            section(results, sizes)
    if out:
        with open(out, "w") as handle:
            json.dump(results, handle, indent=2)
        print(f"written to {out}", flush=True)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument(
        "--only",
        action="append",
        choices=list(SECTIONS),
        help="run this section only (repeatable); figures are printed, results.json is left alone",
    )
    parser.add_argument("--stop-rounds", type=int, help="how many stops with children to time")
    parser.add_argument("--out", default=None, help="where to write the figures (default bench/results.json)")
    args = parser.parse_args(argv)
    out = args.out
    if out is None and not args.only:
        out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results.json")
    overrides = {"stop_rounds": args.stop_rounds} if args.stop_rounds else {}
    run(args.quick, out, args.only, **overrides)
    return 0
