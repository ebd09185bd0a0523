"""The reliability report, a pytest plugin active only when asked (FORKWATCH_REPORT=1):
tests marked `reliability(area, what)` fill in their `report` row (cases tried, a detail);
at the end of the run the table goes to reliability-report.md and into README.md's
"Reliability" section, so the README's figures come from a real run, not a keyboard.
"""

import os

import pytest

ROW = pytest.StashKey[dict]()
START, END = "<!-- reliability:start -->", "<!-- reliability:end -->"


def new_row(item):
    """The report row of a test marked `reliability(area, what)`, kept on its item."""
    marker = item.get_closest_marker("reliability")
    row = {"area": marker.args[0], "what": marker.args[1], "cases": 1, "detail": "", "outcome": "not run"}
    item.stash[ROW] = row
    return row


class ReliabilityReport:
    def __init__(self, root):
        self.root = root
        self.rows = []

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        rep = yield
        row = item.stash.get(ROW, None)
        if row is not None:
            if rep.when == "call":
                row["outcome"] = rep.outcome
                self.rows.append(row)
            elif rep.failed:
                row["outcome"] = "failed"
                if row not in self.rows:
                    self.rows.append(row)
        return rep

    def pytest_sessionfinish(self, session, exitstatus):
        if not self.rows:
            return
        lines = ["| area | what was tried | cases | result |", "|---|---|---|---|"]
        for row in sorted(self.rows, key=lambda r: (r["area"], r["what"])):
            result = row["outcome"] + (f": {row['detail']}" if row["detail"] else "")
            lines.append(f"| {row['area']} | {row['what']} | {row['cases']} | {result} |")
        table = "\n".join(lines) + "\n"
        with open(os.path.join(self.root, "reliability-report.md"), "w") as handle:
            handle.write(table)
        readme = os.path.join(self.root, "README.md")
        with open(readme) as handle:
            text = handle.read()
        if START in text and END in text:
            head, rest = text.split(START, 1)
            _, tail = rest.split(END, 1)
            with open(readme, "w") as handle:
                handle.write(f"{head}{START}\n{table}{END}{tail}")
