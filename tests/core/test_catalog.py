"""The catalogue: options checked and turned into flags, config overrides, ports, where secrets come from."""

import pytest


@pytest.mark.parametrize(
    "options, message",
    [
        ({"delay": -1}, "between"),
        ({"delay": "10"}, "a number"),
        ({"delay": float("nan")}, "between"),
        ({"reap": 1}, "true or false"),
        ({"max_children": 2.5}, "whole number"),
        ({"max_children": 10**9}, "between"),
        ([1, 2], "object"),
    ],
)
def test_bad_option_values(options, message):
    from supervisor.core.catalog import OptionError, build_catalog

    with pytest.raises(OptionError, match=message):
        build_catalog()["forking_clock"].parse_options(options)


def test_options_become_flags():
    from supervisor.core.catalog import build_catalog

    spec = build_catalog()["forking_clock"]
    parsed = spec.parse_options({"delay": 2, "busy": True, "reap": True})
    assert parsed == {"delay": 2.0, "busy": True, "reap": True, "max_children": 100}
    args = [arg for option in spec.options for arg in option.as_args(parsed[option.name])]
    assert args == ["--delay", "2", "--busy", "--reap", "--max-children", "100"]


def test_the_clocks_work_options_and_busy_needs_work():
    from supervisor.core.catalog import OptionError, build_catalog

    spec = build_catalog()["clock"]
    parsed = spec.parse_options({"threading": True, "work": 0.5, "busy": True})
    args = [arg for option in spec.options for arg in option.as_args(parsed[option.name])]
    assert args == ["--threading", "--work", "0.5", "--busy"]
    with pytest.raises(OptionError, match="option busy needs work above 0"):
        spec.parse_options({"busy": True})


def test_the_catalogue_is_in_the_lectures_order():
    from supervisor.core.catalog import CATALOG

    assert [spec.name for spec in CATALOG] == [
        "clock",
        "clock_udp",
        "clock_unix",
        "clock_unix_dgram",
        "fork_demo",
        "forking_clock",
        "web",
        "swap",
        "secret_number",
        "guess_word",
    ]
    forking = {spec.name for spec in CATALOG if spec.forks}
    assert forking == {"fork_demo", "forking_clock", "secret_number"}


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"nope": {"port": 1}}, "unknown server"),
        ({"clock": {"module": "os"}}, "cannot set 'module'"),
        ({"clock": {"port": 70000}}, "port must be"),
        ({"fork_demo": {"port": 5}}, "port must be"),
    ],
)
def test_config_overrides_are_checked(overrides, message):
    from supervisor.core.catalog import build_catalog

    with pytest.raises(ValueError, match=message):
        build_catalog(overrides)


def test_catalog_covers_every_lecture_server_with_distinct_ports():
    from supervisor.core.catalog import CATALOG

    modules = {spec.module for spec in CATALOG}
    assert modules == {"clock", "forking_clock", "web", "swap", "secret_number", "guess_word", "fork_demo"}
    ports = [(spec.port, spec.protocol == "udp") for spec in CATALOG if spec.port]
    assert len(ports) == len(set(ports))
    assert next(spec for spec in CATALOG if spec.name == "clock").port == 12091


def test_a_games_secret_comes_from_where_the_catalogue_says():
    from servers.guess_word import WORDS
    from supervisor.core.catalog import build_catalog

    catalog = build_catalog()
    numbers = {catalog["secret_number"].secret.pick() for _ in range(200)}
    assert numbers <= {str(n) for n in range(1, 101)} and len(numbers) > 1
    assert {catalog["guess_word"].secret.pick() for _ in range(50)} <= set(WORDS)
    assert catalog["clock"].secret is None and not catalog["clock"].describe()["has_secret"]
