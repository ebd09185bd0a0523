"""The students' servers: ServerSpecs made from the instructor's `forkwatch --serve FILE
[--as EXERCISE] [--name NAME] [--opt NAME=SECONDS]` and from the config file's tables that
have a `command`, each checked before anything starts.

    [servers.team3]
    command = ["python3", "solutions/team3/secret.py", "--port", "{port}"]
    exercise = "secret_number"     # optional: the exercise whose checks it must pass
    title = "Team 3"               # optional; also description
    options = { timeout = 3 }      # optional: what the checks must know (swap's timeout, …)
    max_processes = 64             # optional limits: tasks at once, address space, CPU time
    memory_mb = 2048
    cpu_seconds = 300

`{port}` (required) is the free port forkwatch picks at each start, `{python}` forkwatch's
Python, `{timeout}` and `{delay}` the options. A part of a config command that names a file
relative to the config file's folder becomes its absolute path: the program runs in a
working folder of its own. Only the instructor adds servers (command line, config file);
the web page never can.
"""

import os
import re
import shutil
import sys

from supervisor.core.catalog import CATALOG, ServerSpec, build_catalog
from supervisor.core.checks import exercise as find_exercise
from supervisor.core.checks.runner import command_for_file, fill, shown_number
from supervisor.proc.limits import Limits

NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}")
PROCESSES = 64
MEMORY_MB = 2048
CPU_SECONDS = 300  # of each process: a server that answers for an hour uses a few seconds
LIMITS = {  # config key: (lowest, highest, default)
    "max_processes": (1, 4096, PROCESSES),
    "memory_mb": (64, 65536, MEMORY_MB),
    "cpu_seconds": (1, 86400, CPU_SECONDS),
}
TABLE_KEYS = ("command", "exercise", "title", "description", "options", *LIMITS)
LECTURE = {spec.name: spec for spec in CATALOG}


def catalog(settings, extra_servers=()):
    """{name: ServerSpec}: the lecture's servers with the config's overrides, then
    `extra_servers`, the config's students' servers and those of `settings["serve"]`
    ([{file, exercise, name, options}], the command line's --serve). ValueError with a
    sentence for anything wrong."""
    tables = settings.get("servers") or {}
    if not isinstance(tables, dict):
        raise ValueError("servers in the config must be tables: [servers.NAME]")
    overrides, students = {}, []
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ValueError(f"servers.{name} in the config must be a table")
        if "command" not in table:
            if name not in LECTURE:
                raise ValueError(
                    f"the config names an unknown server {name!r}; a student's server needs "
                    'command = [..., "{port}"]'
                )
            overrides[name] = table
        elif name in LECTURE:
            raise ValueError(
                f"servers.{name} in the config: {name} is one of the lecture's servers; "
                "give the student's server another name"
            )
        else:
            folder = settings.get("config_folder") or os.getcwd()
            students.append((f"servers.{name} in the config", from_table(name, table, folder)))
    for entry in settings.get("serve") or ():
        students.append((f"--serve {entry['file']}", from_file(**entry)))
    found = build_catalog(overrides)
    found.update({spec.name: spec for spec in extra_servers})
    where = {}
    for source, spec in students:
        if spec.name in LECTURE:
            raise ValueError(
                f"{source}: {spec.name} is one of the lecture's servers; give it another name (--name)"
            )
        if spec.name in found:
            raise ValueError(
                f"two servers are named {spec.name} ({where.get(spec.name, 'another')} and "
                f"{source}): give one of them another name (--name)"
            )
        where[spec.name] = source
        found[spec.name] = spec
    return found


def from_file(file, exercise=None, name=None, options=None):
    """The spec of `--serve FILE`: run as `python FILE --port PORT`, named after the file
    unless `name` is given."""
    where = f"--serve {file}"
    if not os.path.isfile(file):
        raise ValueError(f"{where}: no such file")
    if name is None:
        stem = os.path.splitext(os.path.basename(file))[0]
        name = re.sub(r"[^A-Za-z0-9_-]", "_", stem)
    return make_spec(where, name, command_for_file(file), exercise, options=options)


def from_table(name, table, folder):
    """The spec of a config table `[servers.NAME] command = [...]`."""
    where = f"servers.{name} in the config"
    unknown = sorted(set(table) - set(TABLE_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown setting {unknown[0]!r} (its settings: {', '.join(TABLE_KEYS)})")
    command = table["command"]
    if not command or not isinstance(command, list) or not all(isinstance(p, str) and p for p in command):
        raise ValueError(
            f'{where}: command must be a list of words, such as ["python3", "team3.py", "--port", "{{port}}"]'
        )
    command = [_from_folder(part, folder) for part in command]
    if "{" not in command[0] and shutil.which(command[0]) is None:
        raise ValueError(f"{where}: {command[0]} is not a program on PATH nor a file in {folder}")
    for key in ("exercise", "title", "description"):
        if key in table and not isinstance(table[key], str):
            raise ValueError(f"{where}: {key} must be text")
    options = table.get("options", {})
    if not isinstance(options, dict):
        raise ValueError(f"{where}: options must be a table, such as {{ timeout = 3 }}")
    limits = {}
    for key, (low, high, _) in LIMITS.items():
        value = table.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high
        ):
            raise ValueError(f"{where}: {key} must be a whole number from {low} to {high}")
        limits[key] = value
    return make_spec(
        where,
        name,
        command,
        table.get("exercise"),
        title=table.get("title"),
        description=table.get("description"),
        options=options,
        limits=limits,
    )


def _from_folder(part, folder):
    """A command's word as the program will need it: a file beside the config, absolute."""
    if "{" in part or os.path.isabs(part):
        return part
    path = os.path.join(folder, part)
    return os.path.abspath(path) if os.path.isfile(path) else part


def make_spec(where, name, command, exercise, title=None, description=None, options=None, limits=None):
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ValueError(
            f"{where}: the name {name!r} must be letters, digits, _ and -, beginning with a letter "
            "(40 at most); give one with --name"
        )
    try:
        chosen = find_exercise(exercise) if exercise is not None else None
        if options and chosen is None:
            raise ValueError("options are what an exercise's checks must know; it has no exercise")
        values = chosen.option_values(options) if chosen is not None else {}
        fill(command, {**placeholders(values.items()), "port": "0"})
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    given = {key: value for key, value in (limits or {}).items() if value is not None}
    allowed = Limits(
        processes=given.get("max_processes", PROCESSES),
        memory_bytes=given.get("memory_mb", MEMORY_MB) << 20,
        cpu_seconds=given.get("cpu_seconds", CPU_SECONDS),
    )
    model = LECTURE.get(exercise)  # the lecture's server of the exercise: its protocol, client, secret
    solves = f"a student's solution of {chosen.title}" if chosen is not None else "a student's program"
    return ServerSpec(
        name=name,
        title=title or name,
        module="",
        port=0,
        protocol=model.protocol if model else "tcp",
        client=model.client if model else None,
        description=description or f"{solves}.",
        secret=model.secret if model else None,
        pids_max=allowed.processes,
        forks=True,  # a student's program may fork: its children can be killed from outside
        exercise=exercise,
        command=tuple(command),
        limits=allowed,
        check_options=tuple(values.items()),
    )


def placeholders(check_options):
    """The values a student's command may name besides {port}: {python} and the options."""
    return {"python": sys.executable, **{name: shown_number(value) for name, value in check_options}}
