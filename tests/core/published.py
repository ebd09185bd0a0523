"""Payloads shaped like the ones the manager publishes (kind, payload), for the recorder's
tests: a server's state, a fork or exit, console lines, a timeline entry, a play."""

import time

_pids = iter(range(40000, 10**9))


def server(name, state, pid=None):
    return "server", {
        "name": name,
        "state": state,
        "pid": pid,
        "port": 12092,
        "reason": None,
        "exit_code": None,
        "options": {},
        "t": time.time(),
    }


def proc(name, kind, pid=None, **extra):
    return "proc", {
        "server": name,
        "kind": kind,
        "pid": pid if pid is not None else next(_pids),
        "ppid": 4000,
        "create_time": round(time.time(), 2),
        "status": "exited" if kind == "exit" else "sleeping",
        "peer": "127.0.0.1:51000",
        "t": time.time(),
        **extra,
    }


def output(name, *lines, stream="stdout"):
    return "output", {"server": name, "stream": stream, "lines": list(lines)}


def timeline(name, kind, text):
    return "event", {"id": 1, "t": time.time(), "server": name, "kind": kind, "text": text}


def play(name, who, summary):
    return "play", {"server": name, "who": who, "summary": summary, "t": time.time()}


def stats(name):
    return "stats", {"server": name, "procs": [{"pid": 4000, "cpu_percent": 1.5, "rss": 9_000_000}]}


def stop_everything(*names):
    return timeline(None, "stop", f"stop everything: {', '.join(names)}")
