"""Fixtures' helpers for supervisor tests: a Manager with every port free (0), its events
recorded, and proof at teardown that every process it started is gone."""

import socket
import threading

from supervisor.core.catalog import CATALOG, ServerSpec
from supervisor.core.manager import Manager
from tests.support import wait_for

ALL_PORTS_FREE = {spec.name: {"port": 0} for spec in CATALOG if spec.port is not None}


def misbehaving(mode, *args, name=None):
    return ServerSpec(
        name=name or mode.replace("-", "_"),
        title=f"misbehaving: {mode}",
        module="misbehaving",
        package="tests.fixtures",
        port=0,
        protocol="tcp",
        client=None,
        description="a server that misbehaves on purpose",
        args=("--mode", mode, *args),
    )


class Recorder:
    """Collects every event a Manager publishes."""

    def __init__(self):
        self.events = []
        self._lock = threading.Lock()

    def __call__(self, kind, payload):
        with self._lock:
            self.events.append((kind, payload))

    def of(self, event_type, **match):
        with self._lock:
            found = [p for k, p in self.events if k == event_type]
        return [p for p in found if all(p.get(key) == value for key, value in match.items())]

    def states(self, name):
        return [p["state"] for p in self.of("server", name=name)]


def make_manager(tmp_path, mechanism="auto", extra_servers=(), **settings):
    config = {
        "state_dir": str(tmp_path / "state"),
        "runtime_dir": str(tmp_path / "run"),
        "servers": dict(ALL_PORTS_FREE),
        "watch_mechanism": mechanism,
        "stop_timeout": 1.0,
    }
    config.update(settings)
    manager = Manager(config, extra_servers=extra_servers)
    recorder = Recorder()
    manager.subscribe(recorder)
    manager.start_background()
    return manager, recorder


def wait_state(manager, name, state, timeout=10.0):
    server = manager.servers[name]
    return wait_for(
        lambda: server.state.name == state, timeout, f"{name} to be {state} (is {server.state.name})"
    )


def start_ready(manager, name, options=None):
    manager.start(name, options)
    wait_state(manager, name, "RUNNING")
    return manager.servers[name]


def connect(server, timeout=10.0):
    return socket.create_connection(("127.0.0.1", server.port), timeout=timeout)


TOKEN = "test-token-0123456789"


def app_config(tmp_path, **extra):
    config = {
        "state_dir": str(tmp_path / "state"),
        "runtime_dir": str(tmp_path / "run"),
        "token": TOKEN,
        "secret_key": "test-signing-key",
        "servers": dict(ALL_PORTS_FREE),
        "stop_timeout": 1.0,
        "play_rate": 100.0,
        "play_burst": 100,
    }
    config.update(extra)
    return config
