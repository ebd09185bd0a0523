"""The states of a supervised server, named once, here. Imports nothing of the project.

STOPPED --start--> STARTING --ready--> RUNNING --stop--> STOPPING --> STOPPED
                      |                  |
                      +--died/timeout--> FATAL (could not start)
                                         +--died on its own--> EXITED
RUNNING, STOPPING --a process survived SIGKILL--> FATAL (its PIDs in the reason)
EXITED --autorestart--> BACKOFF --delay--> STARTING;  too many quick deaths --> FATAL
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
