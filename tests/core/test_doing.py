"""Each sentence of doing.describe, from readings made by hand (the readings themselves are
tested against real processes in tests/proc/test_blocking.py)."""

import pytest

from supervisor.core.doing import describe, row_fields, same_activity
from supervisor.proc.blocking import BLOCKED, GONE, RUNNING, STOPPED, UNKNOWN, ZOMBIE, Blocking
from supervisor.proc.descriptors import CONNECTION, DATAGRAM, LISTENING, PIPE, TERMINAL, UNIX, FdTarget

PID = 4242
LISTENER = FdTarget(3, LISTENING, "listening socket :12092", port=12092)
CLIENT = FdTarget(4, CONNECTION, "connection with 127.0.0.1:37320", port=12092, peer="127.0.0.1:37320")
STDIN = FdTarget(0, PIPE, "stdin (pipe)")


def blocked(syscall, *targets, **fields):
    return Blocking(PID, BLOCKED, syscall=syscall, targets=targets, **fields)


def test_accept_on_a_port():
    assert describe(blocked("accept4", LISTENER)) == "waiting for a client in accept() on :12092"


def test_accept_on_a_unix_path():
    target = FdTarget(3, LISTENING, "listening unix socket /run/clock.sock", path="/run/clock.sock")
    assert describe(blocked("accept", target)) == "waiting for a client in accept() on /run/clock.sock"


def test_accept_without_a_readable_descriptor():
    assert describe(blocked("accept4")) == "waiting for a client in accept()"


@pytest.mark.parametrize("syscall", ["recvfrom", "recvmsg", "read"])
def test_recv_names_the_peer(syscall):
    assert (
        describe(blocked(syscall, CLIENT, wants="read")) == "waiting in recv() for 127.0.0.1:37320's question"
    )


def test_recv_with_a_timeout_is_a_poll_on_the_connection():
    reading = blocked("poll", CLIENT, wants="read", timeout_s=60.0)
    assert describe(reading) == "waiting in recv() for 127.0.0.1:37320's question"


def test_a_poll_to_send_waits_for_the_peer_to_read():
    assert describe(blocked("poll", CLIENT, wants="write")) == "waiting in send() until 127.0.0.1:37320 reads"


def test_send_blocked_on_a_connection():
    assert (
        describe(blocked("sendto", CLIENT, wants="write")) == "waiting in send() until 127.0.0.1:37320 reads"
    )


def test_sleep_with_the_time_left_from_the_kernel_and_the_delay():
    reading = blocked("clock_nanosleep", left_s=6.2)
    assert describe(reading, delay_s=10) == "sleeping in sleep() — 7 s of its 10 s delay left"


def test_sleep_time_left_from_the_childs_age_when_the_kernel_does_not_say():
    reading = blocked("clock_nanosleep")
    assert describe(reading, delay_s=10, age_s=3.0) == "sleeping in sleep() — 7 s of its 10 s delay left"
    assert describe(reading, delay_s=10, age_s=12.0) == "sleeping in sleep()"


def test_sleep_left_never_shows_more_than_the_delay():
    assert describe(blocked("clock_nanosleep", left_s=2.4), delay_s=2.5) == (
        "sleeping in sleep() — 2.5 s of its 2.5 s delay left"
    )
    assert describe(blocked("clock_nanosleep", left_s=0.2), delay_s=2.5) == (
        "sleeping in sleep() — 1 s of its 2.5 s delay left"
    )


def test_sleep_longer_than_the_delay_is_not_the_delay():
    assert describe(blocked("nanosleep", left_s=25.0), delay_s=10) == "sleeping in sleep() — 25 s left"


def test_sleep_with_nothing_known():
    assert describe(blocked("nanosleep")) == "sleeping in sleep()"
    assert describe(blocked("clock_nanosleep", left_s=4.5)) == "sleeping in sleep() — 5 s left"


def test_serve_forever_polls_every_half_second():
    reading = blocked("poll", LISTENER, wants="read", timeout_s=0.5)
    assert describe(reading) == "polling its listening socket (serve_forever, every 0.5 s)"


def test_polling_the_listening_socket_at_another_interval():
    reading = blocked("pselect6", LISTENER, wants="read", timeout_s=0.2)
    assert describe(reading) == "polling its listening socket (every 0.2 s)"


def test_poll_without_timeout_on_the_listening_socket_waits_for_a_client():
    reading = blocked("poll", LISTENER, wants="read")
    assert describe(reading) == "waiting for a client in poll() on :12092"


def test_poll_on_several_descriptors_lists_them():
    reading = blocked("epoll_wait", LISTENER, STDIN, wants="read", timeout_s=1.0)
    assert describe(reading) == (
        "waiting in epoll() on 2 descriptors (listening socket :12092, stdin (pipe), timeout 1 s)"
    )


def test_poll_on_nothing_readable():
    assert describe(blocked("ppoll", timeout_s=2.5)) == "waiting in poll() (timeout 2.5 s)"
    assert describe(blocked("select")) == "waiting in select()"


@pytest.mark.parametrize("syscall", ["wait4", "waitid"])
def test_wait_for_a_child(syscall):
    assert describe(blocked(syscall)) == "waiting in wait() for a child"


def test_input_on_stdin():
    assert describe(blocked("read", STDIN, wants="read")) == "waiting in input() on stdin"
    terminal = FdTarget(0, TERMINAL, "stdin (terminal /dev/pts/3)", path="/dev/pts/3")
    assert describe(blocked("read", terminal, wants="read")) == "waiting in input() on stdin"


def test_read_on_another_pipe():
    assert describe(blocked("read", FdTarget(5, PIPE, "pipe"))) == "waiting in read() on pipe"


def test_datagram_and_unix_sockets():
    udp = FdTarget(3, DATAGRAM, "udp socket :12091", port=12091)
    assert describe(blocked("recvfrom", udp)) == "waiting in recvfrom() for a datagram on :12091"
    unix = FdTarget(4, UNIX, "unix socket /run/clock.sock", path="/run/clock.sock")
    assert describe(blocked("recvfrom", unix)) == "waiting in recv() on unix socket /run/clock.sock"


def test_signals_locks_and_connect():
    assert describe(blocked("pause")) == "waiting for a signal in pause()"
    assert describe(blocked("rt_sigsuspend")) == "waiting for a signal in rt_sigsuspend()"
    assert describe(blocked("futex")) == "waiting for a lock or another thread (futex)"
    assert describe(blocked("connect")) == "connecting in connect()"


def test_other_calls_and_unknown_numbers():
    assert describe(blocked("flock", FdTarget(7, "file", "/tmp/lock", path="/tmp/lock"))) == (
        "waiting in flock() on /tmp/lock"
    )
    assert describe(blocked("syscall 451")) == "waiting in syscall 451"


def test_in_the_kernel_outside_a_system_call():
    assert (
        describe(Blocking(PID, BLOCKED, wchan="folio_wait_bit")) == "waiting in the kernel (folio_wait_bit)"
    )
    assert describe(Blocking(PID, BLOCKED)) == "waiting in the kernel"


def test_the_states_without_a_call():
    assert describe(Blocking(PID, RUNNING)) == "running"
    assert describe(Blocking(PID, ZOMBIE)) == "zombie: exited, nobody called wait()"
    assert describe(Blocking(PID, GONE, reason="the process is gone")) == "gone (exited)"
    unknown = Blocking(PID, UNKNOWN, reason="needs permission to read /proc/PID/syscall")
    assert describe(unknown) == "unknown (needs permission to read /proc/PID/syscall)"


def test_stopped_says_what_it_was_doing():
    reading = Blocking(PID, STOPPED, syscall="accept4", targets=(LISTENER,))
    assert describe(reading) == "stopped by a signal while waiting for a client in accept() on :12092"


def test_row_fields():
    assert row_fields(blocked("accept4", LISTENER)) == {
        "doing": "waiting for a client in accept() on :12092",
        "syscall": "accept4",
        "fd_target": "listening socket :12092",
    }
    assert row_fields(Blocking(PID, ZOMBIE)) == {
        "doing": "zombie: exited, nobody called wait()",
        "syscall": None,
        "fd_target": None,
    }


def test_a_countdown_is_the_same_activity_and_a_new_call_is_not():
    sleeping = blocked("clock_nanosleep", left_s=7.0)
    assert same_activity(sleeping, blocked("clock_nanosleep", left_s=6.0))
    assert not same_activity(sleeping, blocked("poll", CLIENT, wants="read", timeout_s=60.0))
    assert not same_activity(blocked("poll", CLIENT, wants="read"), blocked("poll", CLIENT, wants="write"))
    assert not same_activity(Blocking(PID, RUNNING), Blocking(PID, ZOMBIE))
