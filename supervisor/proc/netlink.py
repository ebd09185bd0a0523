"""The netlink source: the kernel's process-event connector tells of every fork and exit
on the machine as they happen, once the kernel has accepted our subscription."""

import errno
import os
import select
import socket
import struct
import subprocess
import time

from supervisor.proc.exits import CHANGED, LOST, NEW, Change, PidfdExits
from supervisor.proc.stat import since_boot

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2
PROC_EVENT_NONE = 0x00000000  # the kernel's answer to a subscription: its error code
PROC_EVENT_FORK = 0x00000001
PROC_EVENT_EXIT = 0x80000000
NLMSG_HDR = struct.Struct("=IHHII")
CN_MSG = struct.Struct("=IIIIHH")
PROC_EVENT_HDR = struct.Struct("=IIQ")  # what, cpu, timestamp_ns
FORK_BODY = struct.Struct("=IIII")  # parent pid, parent tgid, child pid, child tgid
EXIT_BODY = struct.Struct("=IIII")  # pid, tgid, exit code, exit signal
ACK_BODY = struct.Struct("=I")  # err
REPORTED_FOR = 30.0  # seconds a reported new PID is remembered, for `unreported`


class NetlinkSource(PidfdExits):
    """Fork and exit notices for every process on the machine, as they happen.

    Only while the kernel counts at least one subscriber does it send any, and a socket
    bound to the group receives them whoever subscribed: another program's subscription
    can make a refused one look as if it worked, until that program leaves. So `open()`
    reads the kernel's answer to our own subscription (some kernels refuse it without
    CAP_NET_ADMIN; inside a container's own PID or user namespace there is no answer at
    all), then proves events arrive with a test child. While running, `unreported` tells
    the watcher which processes it found that this source never told of.
    """

    name = "netlink"
    interval = 0.25

    def __init__(self, self_test_timeout=0.1, answer_timeout=1.0):
        super().__init__()
        self.sock = None
        self._self_test_timeout = self_test_timeout
        self._answer_timeout = answer_timeout
        self._asked = set()  # ack numbers of our requests still unanswered
        self._answers = {}  # ack number of an answer to one of them -> the kernel's error code
        self._reported = {}  # pid -> since_boot() when its fork was told of
        self._listening = False  # the kernel counts us among its subscribers
        self._pruned_at = 0.0

    def open(self):
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
            sock.bind((0, CN_IDX_PROC))
            self.sock = sock
            sock.setblocking(False)
            self._subscribe()
            if not self._self_test(self._self_test_timeout):
                raise OSError("the process-event connector stayed silent")
            super().open()
            self._epoll.register(sock.fileno(), select.EPOLLIN)
        except OSError:
            self.close()
            raise
        return self

    def _subscribe(self):
        """Ask for events and read the kernel's answer: OSError unless it says yes."""
        ack = self._control(PROC_CN_MCAST_LISTEN)
        deadline = time.monotonic() + self._answer_timeout
        while ack + 1 not in self._answers:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise OSError(
                    "the process-event connector did not answer the subscription "
                    "(it ignores processes outside the machine's first PID and user namespaces)"
                )
            select.select([self.sock], [], [], remaining)
            self._receive()
        self._asked.discard(ack)
        err = self._answers.pop(ack + 1)
        if err:
            raise OSError(err, f"the process-event connector refused the subscription: {os.strerror(err)}")
        self._listening = True

    def _control(self, op):
        """Send a request; returns its ack number (the kernel answers with that number + 1)."""
        ack = int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF
        self._asked.add(ack)
        body = struct.pack("=I", op)
        cn = CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, ack, len(body), 0) + body
        self.sock.send(NLMSG_HDR.pack(NLMSG_HDR.size + len(cn), 3, 0, 0, 0) + cn)
        return ack

    def unreported(self, stats, before):
        """Of `stats` (processes found some other way), those this source never told of
        although they were created before `before` (since_boot() seconds) and recently
        enough to be remembered: evidence that it has gone deaf."""
        horizon = since_boot() - REPORTED_FOR
        return [
            stat
            for stat in stats
            if horizon < stat.started < before and self._reported.get(stat.pid, -1.0) < stat.started - 0.02
        ]

    def _self_test(self, timeout):
        child = subprocess.Popen(["/bin/true"] if os.path.exists("/bin/true") else ["true"])
        child.wait()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            select.select([self.sock], [], [], max(0.0, deadline - time.monotonic()))
            if any(c.kind == NEW and c.pid == child.pid for c in self._receive()):
                return True
        return False

    def drain(self):
        others, exits = self._ready()
        return (self._receive() if others else []) + exits

    def _receive(self):
        changes = []
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return changes
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # overrun: the watcher looks at everything again
                    changes.append(Change(LOST))
                    continue
                raise
            offset = 0
            now = since_boot()
            while offset + NLMSG_HDR.size <= len(data):
                length = NLMSG_HDR.unpack_from(data, offset)[0]
                if length < NLMSG_HDR.size:
                    break
                change = self._parse(data, offset + NLMSG_HDR.size)
                if change:
                    changes.append(change)
                    if change.kind == NEW:
                        self._reported[change.pid] = now
                offset += (length + 3) & ~3
            if now - self._pruned_at > REPORTED_FOR:
                self._pruned_at = now
                self._reported = {pid: t for pid, t in self._reported.items() if now - t < REPORTED_FOR}

    def _parse(self, data, at):
        ack = CN_MSG.unpack_from(data, at)[3] if at + CN_MSG.size <= len(data) else 0
        at += CN_MSG.size
        if at + PROC_EVENT_HDR.size > len(data):
            return None
        what = PROC_EVENT_HDR.unpack_from(data, at)[0]
        at += PROC_EVENT_HDR.size
        if what == PROC_EVENT_NONE and ack - 1 in self._asked and at + ACK_BODY.size <= len(data):
            self._answers[ack] = ACK_BODY.unpack_from(data, at)[0]  # the answer to our request
        elif what == PROC_EVENT_FORK:
            _, parent_tgid, child_pid, child_tgid = FORK_BODY.unpack_from(data, at)
            if child_pid == child_tgid:  # a new process, not a new thread
                return Change(NEW, child_tgid, parent_tgid)
        elif what == PROC_EVENT_EXIT:
            pid, tgid, _, _ = EXIT_BODY.unpack_from(data, at)
            if pid == tgid:
                return Change(CHANGED, tgid)
        return None

    def close(self):
        super().close()
        if self.sock is not None:
            if self._listening:  # only then: on some kernels it lowers a count of all subscribers
                try:
                    self._control(PROC_CN_MCAST_IGNORE)
                except OSError:
                    pass
                self._listening = False
            self.sock.close()
            self.sock = None
