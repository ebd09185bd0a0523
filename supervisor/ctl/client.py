"""The dashboard's JSON API from a shell: where it is, the token, calls with timeouts.

Also the words its calls take: start options and signal names as typed in a shell.

Failures become a CtlError carrying the exit code they mean (see `supervisor.ctl`): 1 for
a refusal (4xx, with the API's sentence), 2 when the dashboard cannot be reached or
answers with something that is not its JSON, or with a 5xx.

Where to go: `--url`, else FORKWATCH_URL, else the host and port of the config file
(`--config` or FORKWATCH_CONFIG, with FORKWATCH_HOST / FORKWATCH_PORT), else
http://127.0.0.1:5000. The instructor's token is looked up as the dashboard itself looks
it up — `--token-file`, FORKWATCH_TOKEN, the config file's `token`, the `token` file in
the config folder (FORKWATCH_STATE_DIR, else $XDG_CONFIG_HOME/forkwatch) — and never
taken from the command line, where `ps` would show it. Without one, ctl is a viewer.
"""

import functools
import json
import os
import signal
import socket
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPException

from supervisor.core import config as dashboard_config

OK, REFUSED, UNREACHABLE = 0, 1, 2
DEFAULT_TIMEOUT = 10.0
MAX_ANSWER = 16 * 1024 * 1024


class CtlError(Exception):
    """A failure with the exit code it means and one sentence for stderr."""

    def __init__(self, code, message, status=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


# --- where the dashboard is, and the token -------------------------------------------------


@functools.cache
def dashboard_settings(config_file):
    """host, port, token and state_dir as the dashboard would read them (file, then
    environment), without creating anything."""
    wanted = ("host", "port", "token", "state_dir")
    settings = {key: dashboard_config.DEFAULTS[key] for key in wanted}
    config_file = config_file or os.environ.get("FORKWATCH_CONFIG")
    try:
        if config_file:
            settings.update({k: v for k, v in dashboard_config.load_file(config_file).items() if k in wanted})
        for variable, (key, kind) in dashboard_config.ENVIRONMENT.items():
            if key in wanted and os.environ.get(variable):
                try:
                    settings[key] = kind(os.environ[variable])
                except ValueError:
                    raise dashboard_config.ConfigError(f"{variable} must be a {kind.__name__}") from None
    except dashboard_config.ConfigError as exc:
        raise CtlError(REFUSED, str(exc)) from None
    settings["state_dir"] = settings["state_dir"] or dashboard_config.user_state_dir()
    return settings


def dashboard_url(args):
    url = getattr(args, "url", None) or os.environ.get("FORKWATCH_URL")
    if not url:
        settings = dashboard_settings(args.config)
        host, port = settings["host"], settings["port"]
        if not port:
            raise CtlError(REFUSED, "the config's port is 0 (any free port): give --url or FORKWATCH_URL")
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
        url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CtlError(REFUSED, f"the dashboard's URL must look like http://HOST:PORT, not {url!r}")
    return url.rstrip("/")


def read_token_file(path):
    try:
        with open(path) as handle:
            return handle.read().strip() or None
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise CtlError(REFUSED, f"cannot read the token file {path}: {exc}") from None


def instructor_token(args):
    if args.token_file:
        token = read_token_file(args.token_file)
        if token is None:
            raise CtlError(REFUSED, f"the token file {args.token_file} does not exist or is empty")
        return token
    if os.environ.get("FORKWATCH_TOKEN"):
        return os.environ["FORKWATCH_TOKEN"]
    settings = dashboard_settings(args.config)
    return settings["token"] or read_token_file(os.path.join(settings["state_dir"], "token"))


# --- the JSON API over HTTP -----------------------------------------------------------------


def unreachable_words(exc, timeout):
    reason = getattr(exc, "reason", exc)  # URLError wraps the socket's error
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused (is forkwatch running there?)"
    if isinstance(reason, socket.gaierror):
        return f"the host name does not resolve ({reason.strerror})"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


class Api:
    """Calls to the dashboard's JSON API: JSON in, JSON out, a timeout on every call."""

    def __init__(self, url, token, timeout=DEFAULT_TIMEOUT):
        self.url = url
        self.token = token
        self.timeout = timeout
        # no proxy from the environment: the dashboard is reached directly, or not at all
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method, path, body=None):
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                raw = response.read(MAX_ANSWER)
        except urllib.error.HTTPError as err:
            raise self._refusal(method, path, err) from None
        except (OSError, HTTPException) as exc:
            raise CtlError(
                UNREACHABLE, f"cannot reach forkwatch at {self.url}: {unreachable_words(exc, self.timeout)}"
            ) from None
        try:
            return json.loads(raw)
        except ValueError:
            raise CtlError(
                UNREACHABLE, f"the answer from {self.url} is not JSON; is that a forkwatch dashboard?"
            ) from None

    def _refusal(self, method, path, err):
        try:
            sentence = json.loads(err.read(MAX_ANSWER))["error"]
            if not isinstance(sentence, str):
                raise TypeError
        except (OSError, HTTPException, ValueError, TypeError, KeyError):
            sentence = f"HTTP {err.code} {err.reason} (not an answer of forkwatch's API)"
        if err.code in (404, 405):
            sentence += f" ({method} {path})"
        code = REFUSED if 400 <= err.code < 500 else UNREACHABLE
        return CtlError(code, sentence, status=err.code)

    def server_path(self, name, action=""):
        return f"/api/servers/{urllib.parse.quote(name, safe='')}" + (f"/{action}" if action else "")

    def server(self, name):
        return self.call("GET", self.server_path(name))


# --- the words the API takes ---------------------------------------------------------------


def option_value(text):
    """`2` → 2, `true` → True, `0.5` → 0.5; anything else stays text."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, bool | int | float) else text


def parse_options(pairs):
    """--opt NAME=VALUE (a bare NAME means true; dashes may stand for underscores)."""
    options = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not key:
            raise CtlError(REFUSED, f"--opt {pair!r}: give NAME=VALUE")
        options[key] = option_value(value) if sep else True
    return options


def signal_name(text):
    """SIGTERM, TERM, term and 15 all name SIGTERM (the dashboard says which it accepts)."""
    text = text.strip()
    if not text.isascii():  # "ſigkill" upper-cases to SIGKILL: names are ASCII only
        raise CtlError(REFUSED, f"{text!r} is not a signal name")
    text = text.upper()
    if text.isdigit():
        try:
            return signal.Signals(int(text)).name
        except ValueError:
            raise CtlError(REFUSED, f"there is no signal number {text}") from None
    return text if text.startswith("SIG") else "SIG" + text
