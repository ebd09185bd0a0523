"""The dashboard killed with SIGKILL in the middle of a demo: its recordings file stays
readable, holds the demo up to about the kill, and the next start ends that recording at
its last event and replays it."""

import os
import signal
import socket
import time
import urllib.request

from supervisor.core.recordings import Recordings
from supervisor.core.recordings_file import diagnose
from tests.helpers import TOKEN, Dashboard, descendants_of, wait_for

SERVER = "forking_clock"


def test_sigkill_of_the_dashboard_mid_demo_leaves_a_readable_recording(tmp_path):
    board = Dashboard(str(tmp_path), TOKEN).start()
    path = os.path.join(tmp_path, "config", "forkwatch", "recordings.sqlite3")
    clients = []
    try:
        info = board.start_server(SERVER, {"delay": 60})
        for _ in range(3):
            clients.append(socket.create_connection(("127.0.0.1", info["port"]), timeout=10))
        wait_for(lambda: board.server_detail(SERVER)["children"] == 3, what="three children")
        [meta] = wait_for(
            lambda: [r for r in board.api("GET", "/api/recordings")[1]["recordings"] if r["forks"] == 3],
            what="the three forks committed to the file",
        )
        board.start_server("clock")  # more of the demo: the last events before the kill
        tree = descendants_of(board.proc.pid)  # its servers, their children, its watchdog
        killed_at = time.time()
        board.proc.send_signal(signal.SIGKILL)
        wait_for(
            lambda: not [p for p in tree if p.is_running() and p.status() != "zombie"], 5.0, "all of it gone"
        )
        assert board.stop() == -signal.SIGKILL
    finally:
        for sock in clients:
            sock.close()
        board.stop()

    assert diagnose(path) is None  # not damaged
    interrupted = Recordings(path).get(meta["id"])
    assert interrupted["recording"] is True  # nobody ended it
    events = Recordings(path).events(meta["id"], limit=20000)
    forks = [e for e in events if e["kind"] == "proc" and e["payload"]["kind"] == "fork"]
    assert len(forks) == 3
    assert events[-1]["t"] >= killed_at - 1.0, "more than the last second was lost"

    board = Dashboard(str(tmp_path), TOKEN).start()  # the next run
    try:
        ended = board.api("GET", f"/api/recordings/{meta['id']}")[1]
        assert ended["recording"] is False and ended["ended"] == events[-1]["t"]
        assert ended["forks"] == 3 and ended["servers"][0] == SERVER
        with urllib.request.urlopen(f"{board.url}recordings/{meta['id']}", timeout=10) as page:
            assert page.status == 200 and f'id="card-{SERVER}"' in page.read().decode()
    finally:
        board.stop()
