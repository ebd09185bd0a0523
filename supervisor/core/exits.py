"""Why a server ended, in words: the exit class (finished or crash) and its reason.

The class follows the states module's one rule (`states.exit_class`); the words say what
the student saw: "served one request, as handle_request() does", "quit on q, as fork.py
does", "closed on Ctrl-C: it ran its own shutdown", or the code or signal of a crash.
"""

import signal

from supervisor.core.states import ExitClass, exit_class


def signal_name(number):
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def describe_exit(returncode):
    """The plain facts of an exit: its code, or the signal that ended it."""
    if returncode is None:
        return "exited"
    if returncode < 0:
        return f"was killed by {signal_name(-returncode)}"
    return f"exited with code {returncode}"


def classify(returncode, spec, options, interrupted=False, last_input=None):
    """(ExitClass, reason) of a server process that ended on its own (not by Stop).

    `interrupted`: forkwatch sent it Ctrl-C (SIGINT) this run; `last_input`: the last line
    the instructor typed into it."""
    sent = {signal.SIGINT} if interrupted else set()
    kind = exit_class(returncode, sent)
    if kind is ExitClass.CRASH:
        return kind, describe_exit(returncode)
    if interrupted:
        if returncode == 0:
            return kind, "closed on Ctrl-C (SIGINT): it ran its own shutdown and exited with code 0"
        return kind, "ended by Ctrl-C (SIGINT), which it did not catch"
    for option in spec.options:
        if option.ends and options.get(option.name) is True:
            return kind, option.ends
    if spec.quits_on and last_input is not None and last_input.strip() == spec.quits_on[0]:
        return kind, spec.quits_on[1]
    return kind, "exited with code 0: it ended as it meant to"
