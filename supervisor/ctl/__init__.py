"""`forkwatch ctl`: control a running dashboard from a terminal or a script, over its JSON
API and its live stream (commands, client, follow, render)."""

from supervisor.ctl.commands import main

__all__ = ["main"]
