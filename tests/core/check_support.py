"""What the check tests share: the lecture's servers and the wrong solutions as commands."""

import os

from tests.helpers import ROOT

SOLUTIONS = os.path.join(ROOT, "tests", "fixtures", "solutions")


def lecture(module, *args):
    """The command that runs a lecture server on the port the runner chooses."""
    return ["{python}", "-m", f"servers.{module}", "--port", "{port}", *args]


def solution(name, *args):
    """The command that runs a wrong solution, as a student's file."""
    return ["{python}", os.path.join(SOLUTIONS, name), "--port", "{port}", *args]


def by_name(report):
    return {result.name: result for result in report.results}
