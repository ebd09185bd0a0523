"""Viewers spread over viewer workers: fork → viewer latency with K viewers split over 1,
2 and 4 `forkwatch viewer` workers fed through Redis, against one process (no Redis)
serving K viewers of its own in the same run; and what the message queue adds to one
viewer's latency.

Everything runs on this one machine: the supervisor, the workers, Redis, the one process
and the viewers (a selector thread per crowd, in this process) share its cores, and
others' work shares them too. So both layouts are measured at the same moments: each has
its crowd connected, and the forks take turns, one on the one process, one on the
supervisor's forking clock. Each side's CPU is reported beside the latency, as % of one
core over the whole alternating run (each layout was busy about half of it), and the
figure that carries over to another machine is the ratio against the one process.
Workers are added as the layouts need them (1, then 2, then 4); a layout's viewers are
split evenly over its workers. A viewer whose join the dashboard drops (on a loaded machine,
one not joined within `unused_session_timeout`) joins again, as a page reconnects; the
rows count those (`cpu_pct.rejoins`).
"""

import os
import tempfile

import psutil

from bench.fanout import CpuMeter, time_forks
from bench.hall_processes import RedisServer, ViewerWorker
from bench.helpers import ONE_ADDRESS_CROWD, TOKEN, Dashboard, summary, wait_for
from bench.viewers import ViewerCrowd

FORKING_CLOCK = ("forking_clock", {"delay": 0, "reap": True})


class Rooms:
    """The two layouts side by side: one process, and a supervisor publishing to Redis with
    its workers; each serves its own forking clock."""

    def __init__(self, folder):
        self.folder = folder
        self.redis = self.one = self.supervisor = None
        self.workers = []

    def start(self):
        self.redis = RedisServer(self.folder).start()
        self.one = Dashboard(self._folder("one"), TOKEN, **ONE_ADDRESS_CROWD).start()
        hall = self._folder("hall")
        self.supervisor = Dashboard(hall, TOKEN, message_queue=self.redis.url, **ONE_ADDRESS_CROWD).start()
        self.one_clock = self.one.start_server(*FORKING_CLOCK)["port"]
        self.hall_clock = self.supervisor.start_server(*FORKING_CLOCK)["port"]
        return self

    def _folder(self, name):
        path = os.path.join(self.folder, name)
        os.makedirs(path, exist_ok=True)
        return path

    def grow(self, count):
        """At least `count` workers, each hearing the supervisor; the first `count`."""
        while len(self.workers) < count:
            worker = ViewerWorker(
                self._folder("workers"), self.redis.url, self.supervisor.url, **ONE_ADDRESS_CROWD
            )
            self.workers.append(worker.start())
            worker.wait_live()
        return self.workers[:count]

    def stop(self):
        for worker in self.workers:
            worker.stop()
        for board in (self.supervisor, self.one):
            if board is not None:
                board.stop()
        if self.redis is not None:
            self.redis.stop()


class CrowdThread:
    """One crowd's selector thread, for CpuMeter: its CPU times within this process."""

    def __init__(self, crowd):
        self.tid = crowd.native_id

    def cpu_times(self):
        mine = [t for t in psutil.Process().threads() if t.id == self.tid]
        return (mine[0].user_time, mine[0].system_time) if mine else (0.0, 0.0)


def crowd_of(ports, count):
    """`count` viewers split over `ports`, each having had its snapshot (live from then on)."""
    crowd = ViewerCrowd(ports, count)
    try:
        wait_for(crowd.all_welcomed, 60.0, "every viewer's snapshot")
    except BaseException:
        crowd.close()
        raise
    return crowd


def processes(*boards):
    return [psutil.Process(board.proc.pid) for board in boards]


def paired(rooms, count, workers, forks):
    """`count` viewers of the one process and `count` split over `workers`, forks taking
    turns between the two: (latencies there, latencies here, CPU % of each side, the joins
    each crowd had to make again)."""
    crowds = []
    try:
        crowds.append(crowd_of([rooms.one.port], count))
        crowds.append(crowd_of([worker.port for worker in workers], count))
        alone, relayed = crowds
        meter = CpuMeter(
            dashboard=processes(rooms.one),
            one_process_clients=[CrowdThread(alone)],
            supervisor=processes(rooms.supervisor),
            workers=processes(*workers),
            redis=[psutil.Process(rooms.redis.proc.pid)],
            workers_clients=[CrowdThread(relayed)],
        )
        direct, through_redis = [], []
        for _ in range(forks):
            direct += time_forks(alone, rooms.one_clock, 1)
            through_redis += time_forks(relayed, rooms.hall_clock, 1)
        cpu = meter.read()
    finally:
        for crowd in crowds:
            crowd.close()
    layouts = {
        "one_process": {key: cpu[key] for key in ("dashboard", "one_process_clients")},
        "workers": {key: cpu[key] for key in ("supervisor", "workers", "redis", "workers_clients")},
    }
    rejoins = {"one_process": alone.rejoins, "workers": relayed.rejoins}
    return summary(direct), summary(through_redis), layouts, rejoins


def single_viewer_cost(rooms, rounds):
    one, queued, _, _ = paired(rooms, 1, rooms.grow(1), rounds)
    return {
        "one_process_ms": one,
        "through_redis_ms": queued,
        "added_ms": {key: round(queued[key] - one[key], 2) for key in ("median", "p95")},
    }


def scale_out(viewer_counts, worker_counts, forks_each, single_rounds):
    rooms = Rooms(tempfile.mkdtemp(prefix="forkwatch-bench-"))
    rows = []
    try:
        rooms.start()
        single = single_viewer_cost(rooms, single_rounds)
        for workers in worker_counts:
            for count in viewer_counts:
                one, relayed, cpu, rejoins = paired(rooms, count, rooms.grow(workers), forks_each)
                rows.append(
                    {
                        "viewers": count,
                        "workers": workers,
                        "latency_ms": relayed,
                        "one_process_ms": one,
                        "p95_vs_one_process": round(relayed["p95"] / one["p95"], 2),
                        "cpu_pct": cpu,
                        "rejoins": rejoins,
                    }
                )
    finally:
        rooms.stop()
    return {"single_viewer": single, "fan_out": rows}


def section_scale_out(results, sizes):
    results["scale_out"] = scale_out(
        sizes["scale_viewers"], sizes["scale_workers"], sizes["forks_each"], sizes["scale_single_rounds"]
    )
    print(f"scale_out: one viewer: {results['scale_out']['single_viewer']}", flush=True)
    for row in results["scale_out"]["fan_out"]:
        print(f"scale_out: {row}", flush=True)
