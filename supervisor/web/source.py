"""The lecture programs' source, read-only, for the page's code pane: only the .py files
that sit directly in servers/, found by their exact name, never through a symlink.

    GET /source/servers/forking_clock.py   → text/plain
"""

import os

from flask import Blueprint, Response

from supervisor.core.process import CommandError
from supervisor.core.stacks import LECTURE_FOLDER

bp = Blueprint("source", __name__)
MAX_BYTES = 1_000_000


def lecture_files(folder=LECTURE_FOLDER):
    """{name: path} of the regular .py files directly in folder (symlinks left out)."""
    found = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.endswith(".py") and entry.is_file(follow_symlinks=False):
                found[entry.name] = entry.path
    return found


def read_source(name, folder=LECTURE_FOLDER):
    """The text of lecture program `name` ("forking_clock.py"); CommandError 404 for any
    other name."""
    path = lecture_files(folder).get(name)
    if path is None:
        raise CommandError(f"there is no lecture program named {name[:60]!r}", 404)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise CommandError(f"{name} cannot be read", 404) from exc
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise CommandError(f"{name} is too long to show", 413)
    return data.decode("utf-8", "replace")


@bp.get("/source/servers/<name>")
def source(name):
    return Response(read_source(name), mimetype="text/plain", headers={"Cache-Control": "no-cache"})
