"""What the kernel allows this user, asked apart from supervisor.proc: its answer to a
process-event subscription of our own, so a test can say which watch mechanism the code
must choose here (root and an unprivileged user may differ)."""

import os
import select
import socket
import struct
import time

import pytest

from supervisor.proc.sources import choose_source

HEADER = struct.Struct("=IHHII")  # netlink message header
CONNECTOR = struct.Struct("=IIIIHH")  # idx, val, seq, ack, len, flags
EVENT = struct.Struct("=IIQI")  # what, cpu, timestamp, then an answer's error code


def netlink_answer(timeout=1.0):
    """The kernel's error code for a subscription to process events (0: accepted), or
    None when it does not answer (or the socket cannot be made)."""
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 11)
    except OSError:
        return None
    with sock:
        sock.bind((0, 1))
        ack = 1000 + os.getpid()
        body = struct.pack("=I", 1)  # listen
        message = CONNECTOR.pack(1, 1, 0, ack, len(body), 0) + body
        sock.send(HEADER.pack(HEADER.size + len(message), 3, 0, 0, 0) + message)
        deadline = time.monotonic() + timeout
        answer = None
        while answer is None and time.monotonic() < deadline:
            if not select.select([sock], [], [], max(0.0, deadline - time.monotonic()))[0]:
                break
            data = sock.recv(65536)
            if CONNECTOR.unpack_from(data, HEADER.size)[3] == ack + 1:
                what, _, _, err = EVENT.unpack_from(data, HEADER.size + CONNECTOR.size)
                if what == 0:
                    answer = err
        if answer == 0:  # leave the kernel's count of subscribers as it was
            body = struct.pack("=I", 2)
            message = CONNECTOR.pack(1, 1, 0, ack + 10, len(body), 0) + body
            sock.send(HEADER.pack(HEADER.size + len(message), 3, 0, 0, 0) + message)
        return answer


NETLINK_ALLOWED = netlink_answer() == 0


def require(mechanism):
    """Go on if this user may watch by `mechanism`; else prove the code refuses it too,
    and skip, saying so."""
    if mechanism == "netlink" and not NETLINK_ALLOWED:
        with pytest.raises(OSError):
            choose_source("netlink")
        pytest.skip("the kernel refuses this user's netlink subscription, and so does forkwatch")
