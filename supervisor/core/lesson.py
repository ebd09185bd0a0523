"""The lesson plan as data: the lecture's steps in order, read from a TOML file (lesson.toml
beside this module, or the instructor's own copy: `forkwatch --lesson FILE`) and checked
against the catalogue and the comparisons, so a mistake is a clear sentence at start.
"""

import dataclasses
import os
import tomllib

from supervisor.core.catalog import OptionError

DEFAULT_LESSON = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lesson.toml")
STEP_KEYS = ("title", "watch", "start", "clients", "stage", "run", "load")
STAGE_KINDS = ("server", "compare")
MAX_STEPS = 100
MAX_CLIENTS = 20
TITLE_LIMIT = 120
LINE_LIMIT = 200


class LessonError(ValueError):
    """The lesson file cannot be used; the message says which step and why."""


@dataclasses.dataclass(frozen=True)
class Step:
    number: int
    title: str
    watch: tuple  # one or two lines
    start: tuple = ()  # (server, {option: value}) in order
    clients: tuple = ()  # (server, count)
    stage: tuple | None = None  # (kind, name)
    run: bool = False
    load: tuple = (None, None)  # (clients, seconds) of the comparison it runs; None: its own

    def describe(self):
        return {
            "step": self.number,
            "title": self.title,
            "watch": list(self.watch),
            "start": {name: options for name, options in self.start},
            "clients": dict(self.clients),
            "stage": {"kind": self.stage[0], "name": self.stage[1]} if self.stage else None,
            "run": self.run,
            "load": {"clients": self.load[0], "seconds": self.load[1]},
        }


@dataclasses.dataclass(frozen=True)
class Lesson:
    title: str
    steps: tuple
    source: str

    def describe(self):
        return {"title": self.title, "source": self.source, "steps": [s.describe() for s in self.steps]}


def load(path, catalog, comparisons):
    """The Lesson in the TOML file at `path`, every step checked; LessonError otherwise.
    `catalog` is {name: ServerSpec}; `comparisons` is {name: Comparison}."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError as exc:
        raise LessonError(f"lesson file {path} does not exist") from exc
    except IsADirectoryError as exc:
        raise LessonError(f"lesson file {path} is a folder, not a file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise LessonError(f"lesson file {path} is not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise LessonError(f"lesson file {path} is not UTF-8 text") from exc
    return parse(data, path, catalog, comparisons)


def parse(data, source, catalog, comparisons):
    where = f"lesson {source}"
    unknown = sorted(set(data) - {"title", "step"})
    if unknown:
        raise LessonError(f"{where}: unknown key {unknown[0]!r} (a lesson has a title and [[step]] tables)")
    title = _text(data.get("title", "The lesson"), f"{where}: title", TITLE_LIMIT)
    steps = data.get("step")
    if not isinstance(steps, list) or not steps:
        raise LessonError(f"{where}: it has no steps (each step is a [[step]] table)")
    if len(steps) > MAX_STEPS:
        raise LessonError(f"{where}: {len(steps)} steps; at most {MAX_STEPS}")
    return Lesson(
        title,
        tuple(_step(i, raw, where, catalog, comparisons) for i, raw in enumerate(steps, 1)),
        str(source),
    )


def _step(number, raw, where, catalog, comparisons):
    if not isinstance(raw, dict):
        raise LessonError(f"{where}: step {number} is not a table")
    title = raw.get("title")
    here = f"{where}: step {number}" + (f" ({title})" if isinstance(title, str) and title else "")
    unknown = sorted(set(raw) - set(STEP_KEYS))
    if unknown:
        raise LessonError(f"{here}: unknown key {unknown[0]!r} (a step may have {', '.join(STEP_KEYS)})")
    title = _text(title, f"{here}: title", TITLE_LIMIT)
    watch = raw.get("watch")
    watch = [watch] if isinstance(watch, str) else watch
    if not isinstance(watch, list) or not 1 <= len(watch) <= 2:
        raise LessonError(f"{here}: watch must be one or two lines of what to watch")
    watch = tuple(_text(line, f"{here}: watch", LINE_LIMIT) for line in watch)
    start = _start(raw.get("start", {}), here, catalog)
    clients = _clients(raw.get("clients", {}), here, catalog, dict(start))
    stage = _stage(raw.get("stage"), here, catalog, comparisons) or (
        ("server", start[0][0]) if start else None
    )
    run = raw.get("run", False)
    if not isinstance(run, bool):
        raise LessonError(f"{here}: run must be true or false")
    if run and (stage is None or stage[0] != "compare"):
        raise LessonError(f"{here}: run = true runs the staged comparison, but the stage is no comparison")
    load = _load(raw.get("load"), here, run)
    if load[1] and not comparisons[stage[1]].takes_seconds:
        raise LessonError(f"{here}: {stage[1]} takes no seconds (its handlers do no work)")
    return Step(number, title, watch, start, clients, stage, run, load)


def _load(value, here, run):
    """(clients, seconds) for the comparison a step runs; each None to keep its own."""
    if value is None:
        return (None, None)
    if not run or not isinstance(value, dict) or set(value) - {"clients", "seconds"}:
        raise LessonError(f"{here}: load = {{ clients = N, seconds = S }} goes with run = true")
    clients, seconds = value.get("clients"), value.get("seconds")
    if clients is not None and (
        isinstance(clients, bool) or not isinstance(clients, int) or not 1 <= clients <= 8
    ):
        raise LessonError(f"{here}: load clients must be a whole number from 1 to 8")
    if seconds is not None and (
        isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= 5
    ):
        raise LessonError(f"{here}: load seconds must be a number from 0 to 5")
    return (clients, seconds)


def _text(value, what, limit):
    if not isinstance(value, str) or not value.strip():
        raise LessonError(f"{what} must be text")
    if len(value) > limit or any(ord(c) < 32 for c in value):
        raise LessonError(f"{what} must be one line of at most {limit} characters")
    return value.strip()


def _start(value, here, catalog):
    if not isinstance(value, dict):
        raise LessonError(f"{here}: start must be a table of server = {{ options }}")
    start = []
    for name, options in value.items():
        spec = catalog.get(name)
        if spec is None:
            raise LessonError(f"{here}: there is no server named {name!r} (known: {', '.join(catalog)})")
        if not isinstance(options, dict):
            raise LessonError(f"{here}: the options of {name} must be a table, e.g. {name} = {{}}")
        try:
            parsed = spec.parse_options(options)
        except OptionError as exc:
            raise LessonError(f"{here}: {name}: {exc}") from exc
        start.append((name, parsed))
    return tuple(start)


def _clients(value, here, catalog, start):
    if not isinstance(value, dict):
        raise LessonError(f"{here}: clients must be a table of server = count")
    for name, count in value.items():
        if name not in catalog or catalog[name].client != "fork":
            raise LessonError(f"{here}: looping clients talk to the forking clock server, not {name!r}")
        if name not in start:
            raise LessonError(f"{here}: clients for {name}, which the step does not start")
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_CLIENTS:
            raise LessonError(f"{here}: clients of {name} must be a whole number from 1 to {MAX_CLIENTS}")
    return tuple(value.items())


def _stage(value, here, catalog, comparisons):
    if value is None:
        return None
    kind, _, name = value.partition(":") if isinstance(value, str) else ("", "", "")
    if kind not in STAGE_KINDS or not name:
        raise LessonError(f'{here}: stage must be "server:NAME" or "compare:NAME"')
    known = catalog if kind == "server" else comparisons
    if name not in known:
        raise LessonError(f"{here}: there is no {kind} named {name!r} (known: {', '.join(known)})")
    return kind, name
