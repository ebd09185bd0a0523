"""The states of a supervised server, named once, here. Imports nothing of the project.

STOPPED --start--> STARTING --ready--> RUNNING --stop--> STOPPING --> STOPPED
                      |                  |
                      +--died/timeout--> FATAL (could not start)
                                         +--died on its own--> EXITED
RUNNING, STOPPING --a process survived SIGKILL--> FATAL (its PIDs in the reason)
EXITED --autorestart--> BACKOFF --delay--> STARTING;  too many quick deaths --> FATAL

An EXITED server also has an exit class: FINISHED when it ended as it meant to (code 0:
`--once` after its request, `q` in fork.py, the end of a Ctrl-C shutdown; or it died of the
very signal someone sent it, as an uncaught Ctrl-C does), CRASH for a non-zero code or a
signal nobody sent. Only a crash is restarted by autorestart.
"""

import enum


class ServerState(enum.Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"
    STOPPING = "stopping"
    EXITED = "exited"
    FATAL = "fatal"


S = ServerState

# States in which a server has (or is about to have) a process.
RUNNING_STATES = frozenset({S.STARTING, S.RUNNING, S.BACKOFF})
# States a start command may begin from.
STARTABLE_STATES = frozenset({S.STOPPED, S.EXITED, S.FATAL})
# States a stop command applies to.
STOPPABLE_STATES = frozenset({S.STARTING, S.RUNNING, S.BACKOFF})
# States whose process may be signalled.
SIGNALLABLE_STATES = frozenset({S.STARTING, S.RUNNING, S.STOPPING})
# States in which the server's process is gone (and its tree, but for any survivors of
# SIGKILL, which a FATAL state's reason names).
STOPPED_STATES = frozenset({S.STOPPED, S.EXITED, S.FATAL})

# States in which Ctrl-C (SIGINT to the server process alone) may be sent.
INTERRUPTIBLE_STATES = frozenset({S.RUNNING})

# For each target state, the states it may be entered from.
ALLOWED_FROM = {
    S.STARTING: frozenset({S.STOPPED, S.EXITED, S.FATAL, S.BACKOFF}),
    S.RUNNING: frozenset({S.STARTING}),
    S.BACKOFF: frozenset({S.EXITED}),
    S.STOPPING: frozenset({S.STARTING, S.RUNNING}),
    S.STOPPED: frozenset({S.STOPPING, S.BACKOFF}),
    S.EXITED: frozenset({S.RUNNING}),
    S.FATAL: frozenset({S.STARTING, S.RUNNING, S.STOPPING, S.BACKOFF, S.EXITED}),
}


class ExitClass(enum.Enum):
    FINISHED = "finished"
    CRASH = "crash"


def exit_class(returncode, signals_sent=frozenset()):
    """FINISHED for code 0 or death by a signal in `signals_sent` (those someone sent the
    server on purpose); CRASH for any other code or signal."""
    if returncode == 0 or (returncode is not None and returncode < 0 and -returncode in signals_sent):
        return ExitClass.FINISHED
    return ExitClass.CRASH
