"""The timeline's words for each moment of a child's life: the line for one child, and
the folded line for several alike ("6 children killed by the server's kill_processes()
and reaped: …").

`words(server, cause, moment)` answers (key, one, many): moments with the same key fold
together; `many(n, pids)` is the folded line, or None when such moments are never folded.
The phrases are a table; `_phrase` only chooses one and fills in its fields.
"""

KILL_PROCESSES = "kill_processes()"
FORKWATCH = "forkwatch"
PIDS_SHOWN = 8

# phrase: (the line for one child, the line for n of them or None)
PHRASES = {
    "forked": ("{server} forked child {pid}{serves}{client}", "{server} forked {n} children: {pids}"),
    "blocked": (
        "child {pid} is blocked for {wait} before it answers",
        "{n} children are blocked for {wait} before they answer: {pids}",
    ),
    "serving": (
        "child {pid} is handling its client{peer}",
        "{n} children are handling their clients: {pids}",
    ),
    "hello": ("child {pid} says hello and exits", "{n} children say hello and exit: {pids}"),
    "closing": (
        "child {pid} closes the client socket and exits",
        "{n} children close their client sockets and exit: {pids}",
    ),
    "client gone": ("child {pid}: its client went away; it exits", None),
    "zombie": (
        "child {pid} exited; nobody called wait(), so it is a zombie",
        "{n} children exited; nobody called wait(), so they are zombies: {pids}",
    ),
    "zombie killed": (
        "child {pid} was killed by forkwatch; nobody called wait(), so it is a zombie",
        "{n} children were killed by forkwatch; nobody called wait(), so they are zombies: {pids}",
    ),
    "shutdown": ("{server}{caught} runs kill_processes(): {line}", None),
    "missed": (
        "child {pid} came and went before forkwatch could read it",
        "{n} children came and went before forkwatch could read them: {pids}",
    ),
    "stop": ("child {pid} ended by Stop", "Stop ended {n} children: {pids}"),
    "killed by server": (
        "child {pid} killed by the server's kill_processes() (-> killing process {pid}) and reaped",
        "{n} children killed by the server's kill_processes() and reaped: {pids}",
    ),
    "with server": ("child {pid} gone as {server} ended", "{n} children gone as {server} ended: {pids}"),
    "killed reaped": (
        "child {pid} killed by forkwatch and reaped by its parent (wait())",
        "{n} children killed by forkwatch and reaped by their parent (wait()): {pids}",
    ),
    "reaped": (
        "child {pid} exited and its parent reaped it at once (wait())",
        "{n} children exited and their parent reaped them at once (wait()): {pids}",
    ),
    "zombie reaped by kill": (
        "zombie {pid} reaped by kill_processes()",
        "{n} zombies reaped by kill_processes(): {pids}",
    ),
    "zombie with server": (
        "zombie {pid} reaped as {server} ended",
        "{n} zombies reaped as {server} ended: {pids}",
    ),
    "zombie reaped": (
        "zombie {pid} reaped by its parent (wait())",
        "{n} zombies reaped by their parent (wait()): {pids}",
    ),
}


def words(server, cause, m):
    """The words of moment m of a child of `server`; `cause`: what the server said it
    caught before its shutdown (Ctrl-C, SIGTERM), or None."""
    phrase, fields = _phrase(m, cause)
    fields.update(server=server, pid=m.child.pid if m.child else None)
    one, many = PHRASES[phrase]
    if many is None:
        return (phrase, id(m)), one.format(**fields), None
    key = (phrase, many.format(n="", pids="", **fields))  # alike: the same folded line but for n and pids
    return key, one.format(**fields), lambda n, pids: many.format(n=n, pids=pids, **fields)


def _phrase(m, cause):
    """(phrase, its fields) for moment m."""
    c = m.child
    if m.step == "forked":
        return "forked", {
            "serves": f" to serve {c.peer}" if c.peer else "",
            "client": f" (fork client {c.client})" if c.client else "",
        }
    if m.step == "blocked":
        return "blocked", {"wait": seconds_text(m.detail)}
    if m.step == "serving":
        return "serving", {"peer": f" {c.peer}" if c.peer else ""}
    if m.step == "closing":
        return ("client gone" if m.detail == "gone" else "closing"), {}
    if m.step == "zombie":
        return ("zombie killed" if c.killed_by == FORKWATCH else "zombie"), {}
    if m.step == "shutdown":
        return "shutdown", {"caught": f" caught {cause} and" if cause else "", "line": m.detail}
    if m.step == "gone":
        return _end(m), {}
    return m.step, {}


def _end(m):
    """A child's end: how it ended (m.detail, decided when it was seen gone), who killed it
    (c.killed_by, known by the time the moment is told), and whether it was a zombie."""
    c = m.child
    if m.detail == "missed":
        return "missed"
    if c.zombie_told:
        if c.killed_by == KILL_PROCESSES:
            return "zombie reaped by kill"
        return "zombie with server" if m.detail in ("stop", "with server") else "zombie reaped"
    if m.detail == "stop":
        return "stop"
    if c.killed_by == KILL_PROCESSES:
        return "killed by server"
    if m.detail == "with server":
        return "with server"
    return "killed reaped" if c.killed_by == FORKWATCH else "reaped"


def seconds_text(text):
    value = float(text)
    return "1 second" if value == 1 else f"{value:g} seconds"


def pid_list(pids):
    pids = list(pids)
    shown = ", ".join(str(pid) for pid in pids[:PIDS_SHOWN])
    return shown + (f" and {len(pids) - PIDS_SHOWN} more" if len(pids) > PIDS_SHOWN else "")
