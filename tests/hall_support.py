"""The lecture hall's test helpers: a supervisor publishing to Redis with its viewer
workers, each a real process; a Socket.IO viewer that keeps what it receives; a browser
session on a worker; and a loopback TCP balancer in front of workers, as nginx would be."""

import re
import selectors
import socket
import threading
import urllib.request

import socketio

from bench.hall_processes import ViewerWorker
from tests.helpers import TOKEN, Dashboard


class Hall:
    """A supervisor (with `message_queue`) and its workers, on one Redis channel."""

    def __init__(self, folder, redis, channel, workers=2, **settings):
        self.folder = folder
        self.redis = redis
        self.channel = channel
        self.supervisor = Dashboard(
            folder, TOKEN, message_queue=redis.url, message_channel=channel, **settings
        ).start()
        self.workers = []
        try:
            for _ in range(workers):
                self.add_worker()
        except BaseException:
            self.stop()
            raise

    def add_worker(self):
        worker = ViewerWorker(self.folder, self.redis.url, self.supervisor.url, self.channel).start()
        self.workers.append(worker)
        return worker.wait_live()

    def stop(self):
        for worker in self.workers:
            worker.stop()
        self.supervisor.stop()


def worker_feed(worker):
    """The worker's own health: its feed's state."""
    return worker.feed()


class LiveViewer:
    """A python-socketio client of a worker's /live that keeps every snapshot, proc event,
    timeline event, feed notice, server change, stage and lesson event it receives, in
    order."""

    def __init__(self, url, auth=None, cookie=None, reconnection=False):
        self.seen = []
        self._lock = threading.Lock()
        self.client = socketio.Client(
            reconnection=reconnection, reconnection_delay=0.2, reconnection_delay_max=0.5
        )
        for kind in ("snapshot", "proc", "event", "feed", "server", "stage", "lesson"):
            self.client.on(kind, self._keep(kind), namespace="/live")
        headers = {"Cookie": cookie} if cookie else None
        self.client.connect(url, transports=["websocket"], namespaces=["/live"], auth=auth, headers=headers)

    def _keep(self, kind):
        def keep(payload):
            with self._lock:
                self.seen.append((kind, payload))

        return keep

    def of(self, kind):
        with self._lock:
            return [payload for k, payload in self.seen if k == kind]

    def fork_of(self, peer):
        return next((p for p in self.of("proc") if p["kind"] == "fork" and p.get("peer") == peer), None)

    def timeline_ids(self):
        """Every timeline event id this page has shown: from snapshots and live events."""
        ids = {event["id"] for event in self.of("event")}
        for snapshot in self.of("snapshot"):
            ids.update(event["id"] for event in snapshot["events"])
        return ids

    def close(self):
        close_all([self])


def close_all(viewers):
    """Disconnect viewers without waiting: each WebSocket client waits up to 3 s for the
    close frame, on a thread of its own that closes its socket in the end."""
    for viewer in viewers:
        threading.Thread(target=viewer.client.disconnect, daemon=True).start()


def browser_login(worker, token=TOKEN):
    """Log in through a worker as a browser does (`/?token=`): its cookie and the page's
    CSRF token, both as the supervisor made them."""
    opener = urllib.request.build_opener(NoRedirect)
    cookie = None
    if token is not None:
        answer = opener.open(f"{worker.url}?token={token}", timeout=10)
        assert answer.status == 303, answer.status
        cookie = answer.headers["Set-Cookie"].split(";")[0]
    request = urllib.request.Request(worker.url, headers={"Cookie": cookie} if cookie else {})
    with opener.open(request, timeout=10) as page:
        cookie = cookie or page.headers["Set-Cookie"].split(";")[0]
        html = page.read().decode()
    csrf = re.search(r'<meta name="csrf-token" content="([^"]*)">', html).group(1)
    return cookie, csrf, html


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """The 303 itself, with its Set-Cookie, rather than the page it points to."""

    def http_error_303(self, req, fp, code, msg, headers):
        return fp


class Balancer:
    """A TCP balancer on a free loopback port: each connection goes to the first of
    `backends` (ports) that accepts it, and its bytes are copied both ways by one selector
    thread. When a worker dies, its connections end and the next ones go to another."""

    def __init__(self, backends):
        self.backends = list(backends)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ, None)
        self.routed = []  # the backend port of each connection, in order
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _connect(self):
        for port in self.backends:
            try:
                return socket.create_connection(("127.0.0.1", port), timeout=1.0), port
            except OSError:
                continue
        return None, None

    def _run(self):
        while not self._stop.is_set():
            for key, _ in self.selector.select(0.1):
                if key.data is None:
                    self._accept()
                else:
                    self._copy(key.fileobj, key.data)

    def _accept(self):
        try:
            front, _ = self.listener.accept()
        except BlockingIOError:
            return
        front.setblocking(True)
        back, port = self._connect()
        if back is None:
            front.close()
            return
        self.routed.append(port)
        self.selector.register(front, selectors.EVENT_READ, back)
        self.selector.register(back, selectors.EVENT_READ, front)

    def _copy(self, source, target):
        try:
            data = source.recv(65536)
            if data:
                target.sendall(data)
                return
        except OSError:
            pass
        for sock in (source, target):
            try:
                self.selector.unregister(sock)
            except (KeyError, ValueError):
                pass
            sock.close()

    def close(self):
        self._stop.set()
        self._thread.join(5)
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()
        self.selector.close()
