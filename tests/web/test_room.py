"""No viewer can take the room down: floods of Socket.IO events against a live dashboard,
from another loopback address, while /healthz is timed from 127.0.0.1.

Each flood is bounded in count and in seconds; the figures go to the reliability table.
"""

import collections
import socket
import threading
import time

import pytest
from wsproto.utilities import LocalProtocolError

from tests.helpers import CTIME, TOKEN, ask, wait_for
from tests.web.floods import Footprint, HealthProbe, NotJoined, RawSocketIO, baseline_p99, footprint

HEALTHZ_TARGET_MS = 50.0


def keep_reading(client):
    """Read everything the dashboard sends until it closes (a client that reads)."""
    thread = threading.Thread(target=lambda: [None for _ in iter(client.read_some, False)], daemon=True)
    thread.start()
    return thread


def send_paced(client, packet, rate, seconds):
    """Send packet `rate` times a second for `seconds` (a bounded load); how many went."""
    sent, began = 0, time.monotonic()
    while time.monotonic() - began < seconds:
        try:
            client.send(packet)
        except (OSError, LocalProtocolError):  # the dashboard closed it
            break
        sent += 1
        if rate:
            time.sleep(max(0.0, began + sent / rate - time.monotonic()))
    return sent


def room(live):
    return live.api("GET", "/api/room", token=False)[1]


def assert_healthz_kept_up(probe, quiet_p99):
    """/healthz answered every time during the flood; its median within the 50 ms target and
    its p99 short of a stall. The p99 itself is reported against the target: on a 2-core
    machine shared with other work a quiet dashboard's own p99 moves by tens of ms, so a
    test failing on it would measure the neighbours."""
    assert not probe.failures, probe.failures[:3]
    assert probe.median() <= HEALTHZ_TARGET_MS, probe.figures()
    assert probe.p99() <= max(250.0, 3 * quiet_p99), (probe.figures(), quiet_p99)


@pytest.mark.reliability(
    "floods",
    "a viewer re-sending the reserved `connect` as an event flat out, reconnecting when cut off (3 s)",
)
def test_a_socket_re_sending_connect_gets_no_snapshot_and_is_cut_off(live, report):
    quiet = baseline_p99(live.port)
    before = room(live)
    sent = joined = not_joined = snapshots = unfinished = 0
    with HealthProbe(live.port) as probe, Footprint(live.proc.pid) as threads:
        began = time.monotonic()
        while time.monotonic() - began < 3.0 and sent < 100_000:
            try:
                flooder = RawSocketIO(live.port, source="127.0.0.2", timeout=2.0, join_timeout=1.0)
            except NotJoined:
                not_joined += 1  # refused (too many new sessions) or the join dropped
                time.sleep(0.05)  # as a client's retry would
                continue
            joined += 1
            reader = keep_reading(flooder)
            left = 3.0 - (time.monotonic() - began)
            sent += send_paced(flooder, '42/live,["connect"]', rate=0, seconds=left)
            try:
                wait_for(lambda c=flooder: c.closed, 5, "the dashboard to cut the flooding socket off")
            except AssertionError:
                assert left < 0.5, f"a socket flooding for {left:.1f} s was not cut off"
                unfinished += 1  # the 3 s ended before this one had flooded enough
            flooder.close()
            reader.join(10)
            snapshots += flooder.count("snapshot")
        took = time.monotonic() - began
    after = room(live)

    def delta(name):
        return after.get(name, 0) - before.get(name, 0)

    accepted, dropped = delta("messages_accepted"), delta("messages_dropped_session_limit")
    assert snapshots == joined, f"{snapshots} snapshots for {joined} connections: a re-sent connect ran again"
    assert delta("cut_off_flooding") == joined - unfinished and delta("events_refused") > 0
    assert dropped > 0 and accepted <= (40 + 1) * (joined + not_joined) + 20 * took
    # Each session, even one cut off at once, leaves Engine.IO's ping thread asleep for its
    # 10 s interval: new sessions a second per address (a burst of 20, then 5) bound them.
    footprint_figures = threads.settled(20 + 5 * took + 8)
    assert footprint(live.proc.pid)[1] - threads.rss_before < 32
    assert_healthz_kept_up(probe, quiet)
    report["cases"] = sent
    report["detail"] = (
        f"{sent / took:,.0f} events/s sent for {took:.1f} s over {joined} connections: {accepted / took:,.0f}/s "
        f"handled, {dropped / took:,.0f}/s dropped, each connection cut off ({not_joined} joins dropped); "
        f"one snapshot per connection; {footprint_figures}; /healthz {probe.figures()} (quiet p99 {quiet:.1f})"
    )


@pytest.mark.reliability("floods", "the instructor's socket sending commands at 50 a second for 3 s")
def test_the_instructors_events_are_limited_too_but_generously(live, report):
    before = room(live)
    instructor = RawSocketIO(live.port, source="127.0.0.3", token=TOKEN)
    reader = keep_reading(instructor)
    began = time.monotonic()
    sent = 0
    for ack_id in range(150):  # 50 a second: each asks for an ack
        instructor.send(f'42/live,{ack_id}["kill",{{"pid":1,"create_time":0}}]')
        sent += 1
        time.sleep(max(0.0, began + sent / 50 - time.monotonic()))
    took = time.monotonic() - began
    acks = lambda: [t for t in instructor.received if t.startswith("43/live,")]  # noqa: E731
    wait_for(lambda: len(acks()) >= 60, 5, "acks for what was let through")
    after = room(live)
    instructor.close()
    reader.join(10)
    dropped = after.get("messages_dropped_session_limit", 0) - before.get("messages_dropped_session_limit", 0)
    answered = len(acks())
    assert all("init process" in t for t in acks())
    assert 60 <= answered <= 40 + 20 * took + 5, answered
    assert dropped == sent - answered
    assert after.get("cut_off_flooding", 0) == before.get(
        "cut_off_flooding", 0
    )  # over the limit, not cut off
    report["cases"] = sent
    report["detail"] = (
        f"{sent} sent in {took:.1f} s ({sent / took:.0f}/s): {answered} answered ({answered / took:.0f}/s), "
        f"{dropped} dropped and counted; the socket stays connected"
    )


@pytest.mark.reliability(
    "floods", "ten sockets from one address, each under its own limit, together over it (4 s)"
)
def test_many_sockets_from_one_address_share_its_limit(live, report):
    before = room(live)
    clients = [RawSocketIO(live.port, source="127.0.0.4") for _ in range(10)]
    readers = [keep_reading(c) for c in clients]
    senders = [threading.Thread(target=send_paced, args=(c, '42/live,["nothing"]', 19, 4.0)) for c in clients]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join(20)
    after = room(live)
    for client in clients:
        client.close()
    for reader in readers:
        reader.join(10)
    by_address = after.get("messages_dropped_address_limit", 0) - before.get(
        "messages_dropped_address_limit", 0
    )
    accepted = after.get("messages_accepted", 0) - before.get("messages_accepted", 0)
    assert by_address > 0 and accepted <= 200 + 100 * 4.5 + 10 * 2  # the address's burst and rate
    report["cases"] = 10 * 19 * 4
    report["detail"] = (
        f"{accepted} let through (100/s for the address after a burst of 200), {by_address} dropped"
    )


def answer_pings_blindly(client, stop, every=2.0):
    """A client that reads nothing can still keep its session: it sends pongs unasked."""
    while not stop.wait(every):
        try:
            client.send("3")
        except (OSError, LocalProtocolError):
            return


def fork_flood(port, count, threads=20):
    """`count` clients of the forking clock server, `threads` at a time: each fork and exit
    is a `proc` event, two timeline events and console lines for every viewer. Returns
    {answer line: how many got it} (the time counts as "the time")."""
    answers = collections.Counter()
    lock = threading.Lock()

    def clients(n):
        for _ in range(n):
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                line = ask(sock, limit=256).decode(errors="replace").rstrip("\n")
            with lock:
                answers["the time" if CTIME.match(line) else line] += 1

    workers = [threading.Thread(target=clients, args=(count // threads,)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    return answers


@pytest.mark.reliability(
    "floods", "a viewer that reads nothing (but answers pings) while 1,500 forks are broadcast"
)
def test_a_client_that_reads_nothing_is_cut_off_at_the_bound(live, report):
    info = live.start_server("forking_clock", {"delay": 0, "reap": True, "max_children": 200})
    before = room(live)
    stalled = RawSocketIO(live.port, source="127.0.0.5", rcvbuf=4096)
    stop = threading.Event()
    pinger = threading.Thread(target=answer_pings_blindly, args=(stalled, stop), daemon=True)
    pinger.start()
    watcher = RawSocketIO(live.port, source="127.0.0.6")
    reader = keep_reading(watcher)
    with Footprint(live.proc.pid) as threads:
        peak_rss = [threads.rss_before]
        flood = threading.Thread(target=fork_flood, args=(info["port"], 1500))
        flood.start()
        while flood.is_alive():
            peak_rss[0] = max(peak_rss[0], footprint(live.proc.pid)[1])
            flood.join(0.05)
    wait_for(
        lambda: room(live).get("cut_off_not_reading", 0) > before.get("cut_off_not_reading", 0),
        15,
        "the dashboard to cut off the client that reads nothing",
    )
    stop.set()
    pinger.join(5)
    assert not stalled.read_some() or wait_for(
        lambda: not stalled.read_some(), 10, "the stalled connection closed"
    )
    stalled.close()
    assert not watcher.closed, "a client that reads was cut off too"
    received = len(watcher.received)
    said = next(line for line in live.lines if "127.0.0.5 reads nothing" in line)
    watcher.close()
    reader.join(10)
    footprint_figures = threads.settled(8)
    assert peak_rss[0] - threads.rss_before < 48, f"RSS {threads.rss_before:.0f} → peak {peak_rss[0]:.0f} MiB"
    report["cases"] = 1500
    report["detail"] = (
        f'cut off at the bound (2,000 messages or 2 MiB unread): "{said.split(": ", 1)[1]}"; '
        f"a reading viewer got {received} messages and "
        f"stayed; {footprint_figures} (RSS peaked at {peak_rss[0]:.0f} MiB)"
    )
