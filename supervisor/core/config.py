"""Settings: defaults → config file (TOML) → environment (FORKWATCH_*) → explicit overrides.

A config file looks like this (every key optional):

    host = "127.0.0.1"
    port = 5000
    watch_mechanism = "auto"     # auto | netlink | procfs | psutil
    stop_timeout = 3.0
    autorestart = false
    recording = true             # record every demo in recordings.sqlite3 (false: off)
    max_recordings_mb = 200      # the oldest recordings go first above this size
    message_queue = "redis://127.0.0.1:6379/0"   # viewer workers: publish every event there
    message_channel = "forkwatch"                 # one channel per dashboard sharing a Redis
    trusted_proxies = ["127.0.0.1", "::1"]        # whose X-Forwarded-For names the client
    supervisor_url = "http://127.0.0.1:5000"     # (forkwatch viewer) where the supervisor is

    [servers.clock]
    port = 13091

    [servers.team3]              # a student's server (students.py): a name of its own
    command = ["python3", "solutions/team3/secret.py", "--port", "{port}"]
    exercise = "secret_number"
"""

import math
import os
import secrets
import tomllib

DEFAULTS = {
    "host": "127.0.0.1",
    "port": 5000,
    "token": None,
    "secret_key": None,
    "state_dir": None,
    "runtime_dir": None,
    "servers": {},
    "watch_mechanism": "auto",
    "poll_interval": 0.02,
    "stop_timeout": 3.0,
    "start_timeout": 10.0,
    "autorestart": False,
    "startsecs": 1.0,
    "startretries": 3,
    "backoff": 0.5,
    "watchdog": True,
    "output_lines": 5000,
    "output_line_length": 2000,
    "play_rate": 5.0,  # plays in any one second, per browser session and per address
    "play_timeout": 15.0,
    "max_fork_clients": 50,
    "cgroups": "auto",  # auto: each server in its own cgroup where the machine allows; off
    # what one client may take (supervisor/web/room.py)
    "max_connections": 512,
    "max_connections_per_address": 192,
    "request_timeout": 10.0,
    "unused_session_timeout": 5.0,
    "session_rate": 5.0,
    "session_burst": 20,
    "outbox_messages": 2000,
    "outbox_bytes": 2 * 1024 * 1024,
    "event_rate": 20.0,
    "event_burst": 40,
    "address_event_rate": 100.0,
    "address_event_burst": 200,
    "token_failure_rate": 0.2,
    "token_failure_burst": 10,
    "public_hosts": [],
    "py_spy": None,  # the py-spy to read stacks with (default: the one beside Python, else on PATH)
    "stack_timeout": 5.0,
    "recording": True,
    "max_recordings_mb": 200,
    "lesson": None,  # a lesson plan (TOML); None: supervisor/core/lesson.toml
    "message_queue": None,  # a redis:// URL: the supervisor publishes, viewer workers relay
    "message_channel": "forkwatch",
    "trusted_proxies": None,  # default: loopback when a message queue is set, else nobody
    "supervisor_url": "http://127.0.0.1:5000",  # for `forkwatch viewer`
}
QUEUE_SCHEMES = ("redis://", "rediss://", "unix://")
ENVIRONMENT = {
    "FORKWATCH_HOST": ("host", str),
    "FORKWATCH_PORT": ("port", int),
    "FORKWATCH_TOKEN": ("token", str),
    "FORKWATCH_STATE_DIR": ("state_dir", str),
    "FORKWATCH_WATCH": ("watch_mechanism", str),
    "FORKWATCH_MESSAGE_QUEUE": ("message_queue", str),  # its password stays out of `ps`
    "FORKWATCH_SUPERVISOR": ("supervisor_url", str),
}


class ConfigError(ValueError):
    pass


def user_state_dir():
    """The user's config folder for forkwatch (token, signing key, running groups)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "forkwatch")


def load_file(path):
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting {unknown[0]!r}")
    return data


def load(config_file=None, overrides=None, environ=None):
    """The supervisor's settings: read(), then its folders, token and cookie-signing key."""
    settings = read(config_file, overrides, environ)
    settings["state_dir"] = settings["state_dir"] or user_state_dir()
    settings["runtime_dir"] = settings["runtime_dir"] or os.path.join(settings["state_dir"], "run")
    os.makedirs(settings["state_dir"], mode=0o700, exist_ok=True)
    os.makedirs(settings["runtime_dir"], mode=0o700, exist_ok=True)
    if not settings["token"]:
        settings["token"] = persistent_secret(settings["state_dir"], "token", 18)
    if not settings["secret_key"]:
        settings["secret_key"] = persistent_secret(settings["state_dir"], "secret_key", 32)
    return settings


def read(config_file=None, overrides=None, environ=None):
    """Defaults → config file → environment → overrides, checked; nothing is written (a
    viewer worker reads its settings so, and holds no token or key)."""
    environ = os.environ if environ is None else environ
    settings = dict(DEFAULTS)
    config_file = config_file or environ.get("FORKWATCH_CONFIG")
    if config_file:
        settings.update(load_file(config_file))
        settings["config_folder"] = os.path.dirname(os.path.abspath(config_file))  # its paths' base
    for variable, (key, kind) in ENVIRONMENT.items():
        if environ.get(variable):
            try:
                settings[key] = kind(environ[variable])
            except ValueError as exc:
                raise ConfigError(f"{variable} must be a {kind.__name__}") from exc
    settings.update({k: v for k, v in (overrides or {}).items() if v is not None})
    check_recording(settings)
    check_message_queue(settings)
    return settings


def rotate_token(settings):
    """A new instructor's token in the config folder (the old one stops working); only for
    the token kept there, not one given by --token, FORKWATCH_TOKEN or a config file."""
    path = os.path.join(settings["state_dir"], "token")
    try:
        with open(path) as handle:
            kept = handle.read().strip()
    except FileNotFoundError:
        kept = None
    if kept != settings["token"]:
        raise ConfigError(
            "--rotate-token makes a new token in the config folder; this run's token comes "
            "from --token, FORKWATCH_TOKEN or the config file: change it there"
        )
    os.remove(path)
    return persistent_secret(settings["state_dir"], "token", 18)


def check_recording(settings):
    if not isinstance(settings["recording"], bool):
        raise ConfigError("recording must be true or false")
    cap = settings["max_recordings_mb"]
    if isinstance(cap, bool) or not isinstance(cap, int | float) or not math.isfinite(cap) or cap <= 0:
        raise ConfigError("max_recordings_mb must be a number of megabytes above 0")


def check_message_queue(settings):
    url = settings["message_queue"]
    if url is not None and (not isinstance(url, str) or not url.startswith(QUEUE_SCHEMES)):
        raise ConfigError("message_queue must be a Redis URL: redis://[:PASSWORD@]HOST:PORT/DB")
    if not isinstance(settings["message_channel"], str) or not settings["message_channel"]:
        raise ConfigError("message_channel must be a name")
    proxies = settings["trusted_proxies"]
    if proxies is None:
        settings["trusted_proxies"] = ["127.0.0.1", "::1"] if url else []
    elif not isinstance(proxies, list) or not all(isinstance(p, str) for p in proxies):
        raise ConfigError("trusted_proxies must be a list of addresses")
    supervisor = settings["supervisor_url"]
    if not isinstance(supervisor, str) or not supervisor.startswith(("http://", "https://")):
        raise ConfigError("supervisor_url must be an http:// or https:// URL")


def persistent_secret(folder, name, size):
    """A random secret kept in folder/name (mode 600), made on first use."""
    path = os.path.join(folder, name)
    try:
        with open(path) as handle:
            value = handle.read().strip()
        if value:
            return value
    except FileNotFoundError:
        pass
    value = secrets.token_urlsafe(size)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value
