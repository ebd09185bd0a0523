"""What `forkwatch ctl` prints: tables and lines for people, JSON for scripts."""

import json
import signal
import time

from supervisor.core.states import SIGNALLABLE_STATES

LIVE_STATE_NAMES = frozenset(state.name for state in SIGNALLABLE_STATES)


def as_json(value):
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def table(header, rows):
    """Columns padded to their widest cell; the last column is left unpadded."""
    rows = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)] + [row[-1]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def duration(seconds):
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def exit_words(code):
    if code is None:
        return "-"
    if code < 0:
        try:
            return f"{code} ({signal.Signals(-code).name})"
        except ValueError:
            return str(code)
    return str(code)


def _dash(value):
    return "-" if value is None else value


def status_table(servers, now=None):
    """One row a server: name, state, pid, port, children, uptime, exit code and reason."""
    now = time.time() if now is None else now
    rows = []
    for server in servers:
        live = server["state"] in LIVE_STATE_NAMES
        address = server.get("port") or server.get("unix_path")
        rows.append(
            [
                server["name"],
                server["state"],
                _dash(server.get("pid")) if live else "-",  # a stopped server's last PID is history
                _dash(address),
                server.get("children", 0),
                duration(now - server["started_at"]) if live and server.get("started_at") else "-",
                exit_words(server.get("exit_code")),
                server.get("reason") or "",
            ]
        )
    header = ["NAME", "STATE", "PID", "PORT", "CHILDREN", "UPTIME", "EXIT", "REASON"]
    return table(header, rows)


def tree_table(tree):
    """A server's processes: the server first, then its descendants, each with what it is
    doing ("waiting for a client in accept() on :12092")."""
    rows = [
        [
            proc["pid"],
            proc["ppid"],
            proc["status"],
            duration(proc.get("age_s") or 0),
            _dash(proc.get("peer")),
            proc.get("doing") or "",
        ]
        for proc in tree
    ]
    return table(["PID", "PPID", "STATUS", "AGE", "CLIENT", "DOING"], rows)


def event_line(event):
    clock = time.strftime("%H:%M:%S", time.localtime(event["t"]))
    return f"{clock}  {event.get('server') or '-'}  {event['kind']}  {event['text']}"


def output_record(server, stream, line):
    """One console line for `tail -f --json` (stream is null for lines read from the backlog)."""
    return {"server": server, "stream": stream, "line": line}


def kill_report(result):
    killed = result.get("killed", [])
    lines = [f"signalled {len(killed)} children" + (f": {' '.join(map(str, killed))}" if killed else "")]
    lines += [f"skipped {skip['pid']}: {skip['reason']}" for skip in result.get("skipped", [])]
    return "\n".join(lines)


def check_report(summary):
    """A check run: a line per check (PASS / FAIL with its fault / not run), then the count."""
    lines = []
    for result in summary["results"]:
        if result["passed"] is None:
            lines.append(f"-     {result['name']}: not run")
        elif result["passed"]:
            lines.append(f"PASS  {result['name']}: {result['rule']}")
        else:
            lines.append(f"FAIL  {result['name']}: {result['rule']}\n      {result['fault']}")
    if summary.get("error"):
        lines.append(f"could not be checked: {summary['error']}")
    lines.append(
        f"{summary['server']} as {summary['exercise']}: {summary['passed']} of {summary['total']} checks "
        f"passed, {summary['failed']} failed ({summary['state']})"
    )
    return "\n".join(lines)
