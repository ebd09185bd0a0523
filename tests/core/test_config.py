"""Settings: defaults, the config file, the environment, and secrets that persist."""

import os
import stat

import pytest

from supervisor.core import config


def test_token_and_key_are_made_once_and_kept(tmp_path):
    first = config.load(overrides={"state_dir": str(tmp_path)}, environ={})
    second = config.load(overrides={"state_dir": str(tmp_path)}, environ={})
    assert first["token"] == second["token"] and len(first["token"]) >= 20
    assert first["secret_key"] == second["secret_key"] and first["secret_key"] != first["token"]
    mode = stat.S_IMODE(os.stat(tmp_path / "token").st_mode)
    assert mode == 0o600


def test_precedence_defaults_file_environment_overrides(tmp_path):
    path = tmp_path / "forkwatch.toml"
    path.write_text('port = 6000\nhost = "127.0.0.1"\nstop_timeout = 5.0\n[servers.clock]\nport = 13091\n')
    environ = {"FORKWATCH_PORT": "7000", "FORKWATCH_TOKEN": "from-env"}
    settings = config.load(str(path), {"state_dir": str(tmp_path), "stop_timeout": 2.0}, environ)
    assert settings["port"] == 7000  # the environment beats the file
    assert settings["stop_timeout"] == 2.0  # explicit overrides beat both
    assert settings["token"] == "from-env"
    assert settings["servers"] == {"clock": {"port": 13091}}
    assert settings["watch_mechanism"] == "auto"  # a default


@pytest.mark.parametrize(
    "text, words",
    [("port = [", "not valid TOML"), ("colour = 'red'", "unknown setting 'colour'")],
)
def test_bad_config_files_are_clear_errors(tmp_path, text, words):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(config.ConfigError, match=words):
        config.load(str(path), {"state_dir": str(tmp_path)}, {})


def test_missing_config_file_and_bad_environment(tmp_path):
    with pytest.raises(config.ConfigError, match="does not exist"):
        config.load(str(tmp_path / "nope.toml"), {"state_dir": str(tmp_path)}, {})
    with pytest.raises(config.ConfigError, match="FORKWATCH_PORT must be a int"):
        config.load(None, {"state_dir": str(tmp_path)}, {"FORKWATCH_PORT": "lots"})


@pytest.mark.parametrize(
    "line, words",
    [
        ("max_recordings_mb = 0", "max_recordings_mb must be a number of megabytes above 0"),
        ('max_recordings_mb = "big"', "max_recordings_mb must be a number of megabytes above 0"),
        ("max_recordings_mb = nan", "max_recordings_mb must be a number of megabytes above 0"),
        ('recording = "yes"', "recording must be true or false"),
        ('message_queue = "amqp://127.0.0.1/"', "message_queue must be a Redis URL"),
        ("message_queue = 6379", "message_queue must be a Redis URL"),
        ('message_channel = ""', "message_channel must be a name"),
        ('trusted_proxies = "127.0.0.1"', "trusted_proxies must be a list of addresses"),
        ('supervisor_url = "127.0.0.1:5000"', "supervisor_url must be an http:// or https:// URL"),
    ],
)
def test_settings_are_checked(tmp_path, line, words):
    path = tmp_path / "forkwatch.toml"
    path.write_text(line + "\n")
    with pytest.raises(config.ConfigError, match=words):
        config.load(str(path), {"state_dir": str(tmp_path)}, {})
    with pytest.raises(config.ConfigError, match=words):
        config.read(str(path), {}, {})  # a viewer worker's settings, checked alike


def test_recording_settings_are_taken(tmp_path):
    path = tmp_path / "forkwatch.toml"
    path.write_text("recording = false\nmax_recordings_mb = 0.5\n")
    settings = config.load(str(path), {"state_dir": str(tmp_path)}, {})
    assert (settings["recording"], settings["max_recordings_mb"]) == (False, 0.5)


def test_a_message_queue_trusts_loopback_proxies_and_comes_from_the_environment(tmp_path):
    alone = config.read(None, {}, {})
    assert alone["message_queue"] is None and alone["trusted_proxies"] == []
    environ = {"FORKWATCH_MESSAGE_QUEUE": "redis://:secret@10.0.0.5:6379/2"}
    hall = config.read(None, {}, environ)
    assert hall["message_queue"] == "redis://:secret@10.0.0.5:6379/2"
    assert hall["trusted_proxies"] == ["127.0.0.1", "::1"]
    assert hall["message_channel"] == "forkwatch"


def test_read_writes_nothing_and_makes_no_secret(tmp_path):
    settings = config.read(None, {"state_dir": str(tmp_path / "state")}, {})
    assert settings["token"] is None and settings["secret_key"] is None
    assert not (tmp_path / "state").exists()
