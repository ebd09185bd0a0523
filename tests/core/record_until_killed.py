"""A process that records a busy demo until it is killed: forks, exits and console lines
at a few hundred events a second, printing `SEQ TIME` after every 50 so the test knows
what had been published when it sent SIGKILL.

    python -m tests.core.record_until_killed PATH
"""

import sys
import threading
import time

from supervisor.core.recorder import Recorder
from tests.core import published as ev

PACE_S = 0.002  # a load generator's pace, not a wait for anything


def event(seq):
    if seq % 3 == 1:
        return ev.output("forking_clock", f"serving client {seq}")
    return ev.proc("forking_clock", "fork" if seq % 3 == 0 else "exit")


def main(argv):
    recorder = Recorder(argv[0]).start()
    recorder.append(*ev.server("forking_clock", "STARTING"))
    pace = threading.Event()
    seq = 0
    while True:
        kind, payload = event(seq)
        payload["seq"] = seq
        recorder.append(kind, payload)
        if seq % 50 == 0:
            print(seq, repr(time.time()), flush=True)
        seq += 1
        pace.wait(PACE_S)


if __name__ == "__main__":
    main(sys.argv[1:])
