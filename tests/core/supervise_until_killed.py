"""A supervisor in a process of its own, for the test that SIGKILLs it and its watchdog
together: it runs the `daemon-child` server (a daemon in a session of its own whose parent
has exited: in no tree of the server), prints one JSON line {server, daemon, watchdog},
then waits to be killed.

    python -m tests.core.supervise_until_killed STATE_DIR CGROUPS(auto|off)
"""

import json
import sys
import threading

from supervisor.core.manager import Manager
from tests.helpers import ALL_PORTS_FREE, misbehaving, wait_for, wait_state


def main(argv):
    state_dir, cgroups = argv
    settings = {"state_dir": state_dir, "servers": dict(ALL_PORTS_FREE), "cgroups": cgroups}
    manager = Manager(settings, extra_servers=[misbehaving("daemon-child")])
    manager.start_background()
    manager.start("daemon_child")
    server = manager.servers["daemon_child"]
    wait_state(manager, "daemon_child", "RUNNING")
    line = wait_for(lambda: [x for x in server.output.tail() if x.startswith("daemon ")], what="the daemon")[
        0
    ]
    print(
        json.dumps(
            {"server": server.pid, "daemon": int(line.split()[1]), "watchdog": manager.guard.watchdog_pid}
        )
    )
    sys.stdout.flush()
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1:])
