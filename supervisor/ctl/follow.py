"""`tail -f` and `events -f`: the backlog, then the live stream (Socket.IO /live) until Ctrl-C.

The client is python-socketio's, over WebSocket only. It reconnects by itself a few times
(about 6 s in all); when the stream does not come back, the follower exits 2. Ctrl-C
exits 0 at once: the disconnect runs in the background, since the WebSocket client would
wait up to 3 s for the server's close frame.

Seams are joined without gaps or repeats where the wire allows it:
- events carry ids, and every (re)connection's snapshot holds the latest 200 of them, so
  events missed while the stream was lost are printed on return, each once;
- console lines carry no ids. The follower subscribes first and reads the backlog over
  HTTP second, so a line printed by the server in between arrives both ways; the live
  lines are held for SEAM_WAIT after the backlog was read (every line the backlog held is
  published within one 0.05 s flush of it), and the longest run of them that repeats the
  backlog's end is dropped. Lines printed while the stream was lost are not fetched again;
  the follower says so.
"""

import queue
import sys
import threading
import time

from supervisor.ctl import render
from supervisor.ctl.client import OK, UNREACHABLE, CtlError

NAMESPACE = "/live"
RECONNECT_ATTEMPTS = 4  # 0.5 + 1 + 2 + 2 s between attempts, ±50 %
SEAM_WAIT = 0.5
CLOSE_WAIT = 0.2
TICK = 0.25


def say(words):
    print(f"forkwatch ctl: {words}", file=sys.stderr, flush=True)


class LiveStream:
    """A Socket.IO client on /live whose events land in one queue, read by the main thread."""

    def __init__(self, url, timeout):
        import socketio  # only the followers need it

        self.url = url
        self.timeout = timeout
        self.items = queue.Queue()
        self.closing = False
        self._errors = socketio.exceptions.ConnectionError
        self.client = socketio.Client(
            reconnection=True,
            reconnection_attempts=RECONNECT_ATTEMPTS,
            reconnection_delay=0.5,
            reconnection_delay_max=2.0,
            handle_sigint=False,
            request_timeout=timeout,
        )
        for kind in ("snapshot", "output", "event"):
            self.client.on(kind, self._queue(kind), namespace=NAMESPACE)
        self.client.on("disconnect", self._lost, namespace=NAMESPACE)

    def _queue(self, kind):
        return lambda data=None: self.items.put((kind, data))

    def _lost(self, *reason):
        if not self.closing:
            self.items.put(("lost", None))

    def open(self):
        try:
            self.client.connect(
                self.url, transports=["websocket"], namespaces=[NAMESPACE], wait_timeout=self.timeout
            )
        except self._errors as exc:
            raise CtlError(UNREACHABLE, f"cannot follow the live stream at {self.url}: {exc}") from None
        threading.Thread(target=self._watch, daemon=True, name="ctl-stream").start()

    def _watch(self):
        self.client.wait()  # returns once the connection is gone and reconnecting gave up
        if not self.closing:
            self.items.put(("gone", None))

    def next(self, timeout):
        try:
            return self.items.get(timeout=timeout)
        except queue.Empty:
            return None, None

    def close(self):
        self.closing = True
        closer = threading.Thread(target=self.client.disconnect, daemon=True, name="ctl-close")
        closer.start()
        closer.join(CLOSE_WAIT)


def follow(ctx, on_item, ready_words, first=None):
    """Open the stream, run first() (the backlog), then feed every item to on_item until
    Ctrl-C (exit 0) or the stream is gone for good (exit 2). on_item(None, None) ticks."""
    stream = LiveStream(ctx.api.url, ctx.api.timeout)
    try:
        stream.open()
        if first is not None:
            first()
        say(f"{ready_words} (Ctrl-C to stop)")
        while True:
            kind, data = stream.next(TICK)
            if kind == "lost":
                say("the live stream was lost; reconnecting…")
            elif kind == "gone":
                raise CtlError(UNREACHABLE, f"the live stream at {ctx.api.url} is gone and did not come back")
            on_item(kind, data)
    except KeyboardInterrupt:
        return OK
    finally:
        stream.close()


def unseen(backlog, live):
    """The live lines less the longest run at their start that repeats the backlog's end."""
    for size in range(min(len(backlog), len(live)), 0, -1):
        if [line for _, line in live[:size]] == backlog[-size:]:
            return live[size:]
    return live


def follow_output(ctx, name, count):
    state = {"backlog": [], "until": None, "held": [], "snapshots": 0}

    def show(stream_name, line):
        ctx.show(render.output_record(name, stream_name, line), line)

    def backlog():
        lines = ctx.api.call("GET", ctx.api.server_path(name, f"output?tail={count}"))["lines"]
        for line in lines:
            show(None, line)
        if lines:
            state.update(backlog=lines, until=time.monotonic() + SEAM_WAIT)

    def on_item(kind, data):
        if kind == "output" and data.get("server") == name:
            records = [(data.get("stream"), line) for line in data.get("lines", [])]
            if state["until"] is not None:
                state["held"].extend(records)
            else:
                for record in records:
                    show(*record)
        elif kind == "snapshot":
            state["snapshots"] += 1
            if state["snapshots"] > 1:
                say(f"reconnected; lines {name} printed while the stream was lost are not shown")
        if state["until"] is not None and time.monotonic() >= state["until"]:
            for record in unseen(state["backlog"], state["held"]):
                show(*record)
            state.update(until=None, held=[])

    return follow(ctx, on_item, f"following {name}'s output", first=backlog)


def follow_events(ctx, count):
    state = {"last": None, "held": []}

    def show(event):
        state["last"] = max(state["last"] or 0, event["id"])
        ctx.show(event, render.event_line(event))

    def on_item(kind, data):
        if kind == "event":
            if state["last"] is None:
                state["held"].append(data)  # before the first snapshot: its events come first
            elif data["id"] > state["last"]:
                show(data)
        elif kind == "snapshot":
            events = data.get("events", [])
            newest = max((event["id"] for event in events), default=0)
            if state["last"] is None:
                for event in events[-count:]:
                    show(event)
                state["last"] = max(state["last"] or 0, newest)
                events, state["held"] = state["held"], []
            elif newest < state["last"]:
                say("the dashboard restarted; its timeline starts afresh")
                state["last"] = 0
            elif events and events[0]["id"] > state["last"] + 1:
                say(f"{events[0]['id'] - state['last'] - 1} events were missed while the stream was lost")
            for event in events:
                if event["id"] > state["last"]:
                    show(event)

    return follow(ctx, on_item, "following the timeline")
