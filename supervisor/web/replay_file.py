"""The replay page's parts: the state it starts from (a card for each server of the
recording, all stopped), and the whole page as one self-contained file — the recording,
the stylesheet and the replay's ES modules inlined, no network needed.
"""

import base64
import hashlib
import os
import re

from flask import render_template

from supervisor.core.catalog import PROJECT_ROOT

JS_FOLDER = os.path.join(PROJECT_ROOT, "static", "js")
CSS_FILE = os.path.join(PROJECT_ROOT, "static", "css", "app.css")
ENTRY = "replay.js"
LOADER = "offline_loader.js"
_IMPORT = re.compile(r'^\s*import\b[^;]*?\bfrom\s+"([^"]+)"', re.MULTILINE)


def page_state(meta, latest, catalog):
    """(cards, first state) for the replay of `meta`: each server the recording shows, as
    its last snapshot (`latest`, or None) describes it, else as the catalogue does."""
    recorded = {info["name"]: info for info in (latest or {}).get("servers", [])}
    names = [name for name in recorded if name in meta["servers"]]
    names += [name for name in meta["servers"] if name not in recorded]
    cards, servers = [], []
    for name in names:
        spec = recorded.get(name, {}).get("spec") or _spec_of(name, catalog)
        cards.append(spec)
        servers.append(
            {
                "name": name,
                "title": spec.get("title", name),
                "state": "STOPPED",
                "pid": None,
                "port": spec.get("port"),
                "reason": None,
                "exit_code": None,
                "children": 0,
                "started_at": None,
                "tree": [],
                "output": [],
                "options": recorded.get(name, {}).get("options", {}),  # the card shows its mode
            }
        )
    mechanism = (latest or {}).get("mechanism")
    return cards, {"servers": servers, "events": [], "mechanism": mechanism}


def _spec_of(name, catalog):
    if name in catalog:
        return catalog[name].describe()
    return {"name": name, "title": name, "module": name, "description": "", "options": [], "port": None}


def modules(entry=ENTRY):
    """{file name: source} of `entry` and every module it imports, from static/js."""
    found = {}
    pending = [entry]
    while pending:
        name = pending.pop()
        if name in found:
            continue
        with open(os.path.join(JS_FOLDER, name), encoding="utf-8") as handle:
            found[name] = handle.read()
        for target in _IMPORT.findall(found[name]):
            if not re.fullmatch(r"\./[\w-]+\.js", target):
                raise ValueError(f"{name} imports {target}, which a saved page cannot carry")
            pending.append(target[2:])
    return found


def _digest(text):
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def offline_page(document, catalog):
    """The self-contained HTML replay of an export document (Recordings.export)."""
    meta = document["recording"]
    latest = document["snapshots"][-1]["state"] if document["snapshots"] else None
    cards, first = page_state(meta, latest, catalog)
    with open(CSS_FILE, encoding="utf-8") as handle:
        css = handle.read()
    with open(os.path.join(JS_FOLDER, LOADER), encoding="utf-8") as handle:
        loader = handle.read()
    # Only the inlined stylesheet and loader, and the modules it makes, may run; nothing
    # may be fetched from anywhere.
    policy = (
        f"default-src 'none'; script-src '{_digest(loader)}' blob:; style-src '{_digest(css)}'; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    return render_template(
        "replay.html",
        meta=meta,
        catalog=cards,
        snapshot=first,
        mechanism=first["mechanism"] or "—",
        role="viewer",
        is_instructor=False,
        can_edit=False,
        csrf="",
        offline={
            "css": css,
            "loader": loader,
            "policy": policy,
            "modules": modules(),
            "entry": ENTRY,
            "document": document,
        },
    )
