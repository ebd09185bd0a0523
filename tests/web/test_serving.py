"""The dashboard's HTTP server itself (`forkwatch` run as a process): a WebSocket that
ends leaves nothing behind it on its connection, not even a line in the log."""

import psutil
import socketio

from tests.helpers import TOKEN, Dashboard, wait_for

JUNK = ("Bad request syntax", "code 400")


def test_websockets_that_end_log_no_junk_request(tmp_path):
    board = Dashboard(str(tmp_path), TOKEN).start()
    try:
        dashboard = psutil.Process(board.proc.pid)
        for _ in range(10):  # each leaves its close frame behind about one time in three
            client = socketio.Client(reconnection=False)
            client.connect(board.url, transports=["websocket"], namespaces=["/live"], wait_timeout=5)
            client.disconnect()

        def open_connections():
            return [
                c
                for c in dashboard.net_connections("tcp")
                if c.laddr.port == board.port and c.status != psutil.CONN_LISTEN
            ]

        wait_for(lambda: not open_connections(), 10.0, "the dashboard to close every connection")
        board.start_server("clock")  # a line logged after anything those connections caused
        wait_for(lambda: any("clock: STARTING -> RUNNING" in line for line in board.lines), what="the marker")
        assert not [line for line in board.lines if any(junk in line for junk in JUNK)]
    finally:
        board.stop()
