"""Viewers of /live that timestamp what they receive: a python-socketio client, and a crowd of
raw WebSockets read in order by one selector thread."""

import json
import threading
import time

import socketio


class Viewer:
    """A real Socket.IO client over WebSocket that timestamps every proc event."""

    def __init__(self, url, token=None):
        self.client = socketio.Client(reconnection=False)
        self.forks = {}  # peer -> arrival (monotonic)
        self.exits = {}  # pid -> arrival of the first notice that it ended: exit, or zombie
        self.peer_pid = {}
        self._lock = threading.Lock()
        self.client.on("proc", self._on_proc, namespace="/live")
        self.client.connect(
            url, transports=["websocket"], namespaces=["/live"], auth={"token": token} if token else None
        )

    def _on_proc(self, proc):
        now = time.monotonic()
        with self._lock:
            if proc["kind"] == "fork" and proc.get("peer"):
                self.forks.setdefault(proc["peer"], now)
                self.peer_pid[proc["peer"]] = proc["pid"]
            elif proc["kind"] == "exit" or (proc["kind"] == "status" and proc["status"] == "zombie"):
                self.exits.setdefault(proc["pid"], now)

    def close(self):
        """Disconnect without waiting: the WebSocket client waits up to 3 s for the close
        frame, and a bench must not."""
        closer = threading.Thread(target=self.client.disconnect, daemon=True)
        closer.start()
        return closer


JOIN_ATTEMPTS = 3


class ViewerCrowd:
    """K viewers over real WebSockets, served by one thread with a selector so that the
    crowd itself costs little CPU: each speaks Engine.IO/Socket.IO just enough to join
    /live, answer pings and timestamp every `proc` fork event and `server` state change it
    receives, in the order they arrive, and which viewers have had their snapshot (a page
    is live from then on). (python-socketio's client starts a thread for every message, so
    behind the ~300 events of a stop with 100 children it would time itself.)"""

    def __init__(self, port, count):
        """`count` viewers of the dashboard on `port`, or split in turn over several
        ports (viewer workers) when `port` is a list."""
        import selectors

        import websocket

        self.arrivals = {}  # peer -> [arrival per viewer]
        self.servers = {}  # name -> [(state, arrival)]
        self.welcomed = set()  # the viewers (their sockets) that have had a snapshot
        self._lock = threading.Lock()
        self._selector = selectors.DefaultSelector()
        self._sockets = []
        self.rejoins = 0  # joins the dashboard dropped, each tried again (as a page reconnects)
        ports = port if isinstance(port, list) else [port]
        for number in range(count):
            for attempt in range(JOIN_ATTEMPTS):
                try:
                    ws = self._join(websocket, ports[number % len(ports)])
                    break
                except (websocket.WebSocketException, OSError):
                    if attempt == JOIN_ATTEMPTS - 1:
                        raise
                    self.rejoins += 1
            self._sockets.append(ws)
            self._selector.register(ws.sock, selectors.EVENT_READ, ws)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self.native_id = self._thread.native_id  # the thread's own CPU time is the crowd's

    def _join(self, websocket, port):
        """One viewer's WebSocket, joined to /live."""
        url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
        ws = websocket.create_connection(url, origin=f"http://127.0.0.1:{port}", timeout=10)
        try:
            ws.recv()  # the Engine.IO open packet
            ws.send("40/live,")
            while not (message := ws.recv()).startswith("40/live"):
                self._note(ws, message)  # a snapshot may come first
        except BaseException:
            ws.close()
            raise
        return ws

    def _run(self):
        while not self._stop.is_set():
            for key, _ in self._selector.select(0.1):
                ws = key.data
                try:
                    message = ws.recv()
                except Exception:
                    self._selector.unregister(key.fileobj)
                    continue
                self._note(ws, message)

    def _note(self, ws, message):
        now = time.monotonic()
        if message == "2":
            ws.send("3")
        elif message.startswith('42/live,["snapshot"'):
            with self._lock:
                self.welcomed.add(ws)
        elif message.startswith('42/live,["proc"'):
            event = json.loads(message[8:])[1]
            if event["kind"] == "fork" and event.get("peer"):
                with self._lock:
                    self.arrivals.setdefault(event["peer"], []).append(now)
        elif message.startswith('42/live,["server"'):
            event = json.loads(message[8:])[1]
            with self._lock:
                self.servers.setdefault(event["name"], []).append((event["state"], now))

    def state_time(self, name, state, after):
        """When a viewer first saw server `name` enter `state` at or after `after`."""
        with self._lock:
            return next((t for s, t in self.servers.get(name, []) if s == state and t >= after), None)

    def all_welcomed(self):
        """Whether every viewer has had its snapshot."""
        with self._lock:
            return len(self.welcomed) >= len(self._sockets)

    def seen_by_all(self, peer):
        with self._lock:
            found = self.arrivals.get(peer, [])
            return list(found) if len(found) >= len(self._sockets) else None

    def close(self):
        self._stop.set()
        self._thread.join(5)
        for ws in self._sockets:
            try:
                ws.sock.close()
            except OSError:
                pass
