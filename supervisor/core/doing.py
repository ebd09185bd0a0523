"""What a process is doing, in one sentence, from what the kernel says it is blocked in.

    waiting for a client in accept() on :12092
    sleeping in sleep() — 7 s of its 10 s delay left
    waiting in recv() for 127.0.0.1:37320's question
    polling its listening socket (serve_forever, every 0.5 s)

Pure functions of a `Blocking` (supervisor/proc/blocking.py) and what the supervisor knows
about the process (a forked child's age, its server's per-child delay); no OS access.
The calls are named as the Python program wrote them (recv(), sleep(), wait(), input()),
not as the C library made them (recvfrom, clock_nanosleep, wait4, read). Each sentence
comes with its activity, one word (accept, sleep, recv, poll, wait, zombie, running, …)
the page draws a glyph for.
"""

import math

from supervisor.proc import blocking, descriptors

ACCEPTS = {"accept", "accept4"}
RECEIVES = {"recvfrom", "recvmsg", "recvmmsg", "read", "readv", "pread64", "preadv"}
SENDS = {"sendto", "sendmsg", "sendmmsg", "write", "writev", "pwrite64", "pwritev", "sendfile"}
POLLS = {"poll", "ppoll", "select", "pselect6", "epoll_wait", "epoll_pwait", "epoll_pwait2"}
SLEEPS = {"nanosleep", "clock_nanosleep"}
WAITS = {"wait4", "waitid"}
SIGNAL_WAITS = {"pause", "rt_sigsuspend", "rt_sigtimedwait"}
SERVE_FOREVER_INTERVAL = 0.5  # socketserver's poll_interval

ZOMBIE_SENTENCE = "zombie: exited, nobody called wait()"
SERVE_FOREVER_SENTENCE = "polling its listening socket (serve_forever, every 0.5 s)"

# What a process waits in, as one word the page draws a glyph for.
ACCEPT, SLEEP, RECV, SEND, POLL, WAIT, INPUT = "accept", "sleep", "recv", "send", "poll", "wait", "input"
SIGNAL, LOCK, CONNECT, KERNEL, OTHER = "signal", "lock", "connect", "kernel", "other"
RUNNING, STOPPED, ZOMBIE, GONE, UNKNOWN = "running", "stopped", "zombie", "gone", "unknown"
FIELDS = ("doing", "syscall", "fd_target", "activity", "sleep_left_s", "sleep_s")


def _seconds(value):
    return f"{value:g}"


def _python_call(name):
    """The name the Python program used for the call the C library made."""
    if name in ACCEPTS:
        return "accept"
    if name in {"poll", "ppoll"}:
        return "poll"
    if name in {"select", "pselect6"}:
        return "select"
    if name.startswith("epoll"):
        return "epoll"
    return name


def _on(target):
    """Where a client arrives: ':12092' for a TCP port, the path of a unix socket."""
    return f":{target.port}" if target.port is not None else (target.path or target.text)


def _reading(target, call):
    if target.kind == descriptors.CONNECTION:
        return RECV, f"waiting in recv() for {target.peer}'s question"
    if target.fd == 0 and target.kind in (descriptors.PIPE, descriptors.TERMINAL, descriptors.FILE):
        return INPUT, "waiting in input() on stdin"
    if target.kind == descriptors.DATAGRAM:
        return RECV, f"waiting in recvfrom() for a datagram on :{target.port}"
    if target.kind == descriptors.UNIX:
        return RECV, f"waiting in recv() on {target.text}"
    return OTHER, f"waiting in {call}() on {target.text}"


def _sending(target, call):
    if target.kind == descriptors.CONNECTION:
        return SEND, f"waiting in send() until {target.peer} reads"
    return SEND, f"waiting in {call}() on {target.text} (its reader is slow)"


def _polling(block):
    call = _python_call(block.syscall)
    targets = block.targets
    if len(targets) == 1:
        target = targets[0]
        if target.kind == descriptors.LISTENING:
            if block.timeout_s is None:
                return ACCEPT, f"waiting for a client in {call}() on {_on(target)}"
            if math.isclose(block.timeout_s, SERVE_FOREVER_INTERVAL):
                return POLL, SERVE_FOREVER_SENTENCE
            return POLL, f"polling its listening socket (every {_seconds(block.timeout_s)} s)"
        if block.wants == "write":
            return _sending(target, "send")
        return _reading(target, call)
    timeout = f"timeout {_seconds(block.timeout_s)} s" if block.timeout_s is not None else None
    if targets:
        details = ", ".join(filter(None, [block.fd_target, timeout]))
        return POLL, f"waiting in {call}() on {len(targets)} descriptors ({details})"
    return POLL, f"waiting in {call}() ({timeout})" if timeout else f"waiting in {call}()"


def sleep_left(block, delay_s=None, age_s=None):
    """Seconds left of the sleep `block` is in (from the kernel, else from the delay and the
    child's age), or None when it is not sleeping or nothing says."""
    if block.state not in (blocking.BLOCKED, blocking.STOPPED) or block.syscall not in SLEEPS:
        return None
    left = block.left_s
    if left is None and delay_s is not None and age_s is not None:
        left = delay_s - age_s
    return None if left is None or left <= 0 else left


def _sleeping(block, delay_s, age_s):
    left = sleep_left(block, delay_s, age_s)
    if left is None:
        return "sleeping in sleep()"
    shown = max(1, math.ceil(left - 1e-6))  # counts down 10, 9, ... 1 like a clock
    if delay_s is not None and left <= delay_s + 0.5:
        shown = min(shown, delay_s)
        return f"sleeping in sleep() — {_seconds(shown)} s of its {_seconds(delay_s)} s delay left"
    return f"sleeping in sleep() — {shown} s left"


def _blocked(block, delay_s, age_s):
    """(activity, sentence) of a process blocked in the kernel."""
    name = block.syscall
    if name is None:
        return KERNEL, f"waiting in the kernel ({block.wchan})" if block.wchan else "waiting in the kernel"
    target = block.target
    if name in ACCEPTS:
        return ACCEPT, (
            f"waiting for a client in accept() on {_on(target)}"
            if target
            else "waiting for a client in accept()"
        )
    if name in POLLS:
        return _polling(block)
    if name in SLEEPS:
        return SLEEP, _sleeping(block, delay_s, age_s)
    if name in WAITS:
        return WAIT, "waiting in wait() for a child"
    if name in SIGNAL_WAITS:
        return SIGNAL, f"waiting for a signal in {name}()"
    if name == "futex":
        return LOCK, "waiting for a lock or another thread (futex)"
    if name == "connect":
        return CONNECT, "connecting in connect()"
    if name in RECEIVES and target is not None:
        return _reading(target, name)
    if name in SENDS and target is not None:
        return _sending(target, name)
    call = name if name.startswith("syscall ") else f"{name}()"  # a number the table does not name
    return OTHER, f"waiting in {call} on {target.text}" if target else f"waiting in {call}"


def activity_and_sentence(block, delay_s=None, age_s=None):
    """(activity, sentence): the word the page draws a glyph for (ACTIVITIES) and what the
    process is doing in words."""
    if block.state == blocking.ZOMBIE:
        return ZOMBIE, ZOMBIE_SENTENCE
    if block.state == blocking.GONE:
        return GONE, "gone (exited)"
    if block.state == blocking.UNKNOWN:
        return UNKNOWN, f"unknown ({block.reason})"
    if block.state == blocking.RUNNING:
        return RUNNING, "running"
    activity, sentence = _blocked(block, delay_s, age_s)
    if block.state == blocking.STOPPED:
        return STOPPED, f"stopped by a signal while {sentence}"
    return activity, sentence


def describe(block, delay_s=None, age_s=None):
    """The sentence for one process. `delay_s` is its server's per-child delay (where the
    server has one and this is a forked child) and `age_s` the child's age: together they
    give the time left of the delay where the kernel does not tell it."""
    return activity_and_sentence(block, delay_s, age_s)[1]


def row_fields(block, delay_s=None, age_s=None):
    """The three fields a tree row carries: {doing, syscall, fd_target}."""
    return {
        "doing": describe(block, delay_s, age_s),
        "syscall": block.syscall,
        "fd_target": block.fd_target,
    }


def live_fields(block, delay_s=None, age_s=None):
    """The row fields and what the page draws from: `activity` (a word of the above) and, for
    a sleep, `sleep_left_s` and `sleep_s` (the whole delay where known) for its countdown."""
    activity, sentence = activity_and_sentence(block, delay_s, age_s)
    left = sleep_left(block, delay_s, age_s)
    return {
        "doing": sentence,
        "syscall": block.syscall,
        "fd_target": block.fd_target,
        "activity": activity,
        "sleep_left_s": round(left, 1) if left is not None else None,
        "sleep_s": delay_s if left is not None and delay_s is not None and left <= delay_s + 0.5 else None,
    }


def same_activity(before, after):
    """True when two readings of a process show it doing the same thing, a sleep's
    countdown aside: the watcher publishes a `doing` change only when this is False, and
    the countdown rides on the once-a-second stats."""
    fields = ("state", "syscall", "targets", "wants", "timeout_s", "reason")
    return all(getattr(before, name) == getattr(after, name) for name in fields)
