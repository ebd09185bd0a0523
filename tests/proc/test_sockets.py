"""What a process's sockets are, asked of the sockets themselves and, where that is not
allowed, read from the kernel's tables: both paths must agree."""

import errno

import pytest

from supervisor.proc import sockets
from supervisor.proc.sockets import listens, peer_of, sockets_of
from supervisor.proc.stat import descendants
from tests.helpers import connect, wait_for


class RefusingLibc:
    """The C library as the kernel answers a user it does not let borrow descriptors:
    pidfd_getfd fails with EPERM (the real pidfd_open still runs before it)."""

    def __init__(self):
        self.refused = 0

    def syscall(self, number, *args):
        assert number == sockets.SYS_PIDFD_GETFD
        self.refused += 1
        return -1


@pytest.fixture(params=["borrowed", "tables"])
def path(request, monkeypatch):
    """Each test runs twice: as root may (pidfd_getfd), and as when the kernel refuses it
    (EPERM), which sends every question to the kernel's tables in /proc/net."""
    if request.param == "tables":
        refusing = RefusingLibc()
        monkeypatch.setattr(sockets, "libc", lambda: refusing)
        monkeypatch.setattr(sockets, "last_errno", lambda: errno.EPERM)
        yield request.param
        assert refusing.refused, "the borrowing path was never tried"
    else:
        yield request.param


def test_a_tcp_server_listens_on_its_port_and_nowhere_else(run_server, path):
    server = run_server("clock", "--port", "0")
    found = sockets_of(server.proc.pid)
    assert [(s.kind, s.local, s.listening) for s in found if s.kind == "tcp"] == [
        ("tcp", ("127.0.0.1", server.port), True)
    ]
    assert listens(server.proc.pid, server.port)
    assert not listens(server.proc.pid, server.port + 1)
    assert not listens(server.proc.pid, unix_path="/nowhere")


def test_a_udp_and_a_unix_server_are_found_too(run_server, tmp_path, path):
    udp = run_server("clock", "--udp", "--port", "0")
    assert listens(udp.proc.pid, udp.port)
    unix = run_server("clock", "--unix", str(tmp_path / "clock.sock"))
    assert listens(unix.proc.pid, unix_path=unix.unix_path)
    assert not listens(unix.proc.pid, unix_path=str(tmp_path / "other.sock"))


def test_a_forked_child_names_the_client_it_serves(run_server, path):
    server = run_server("forking_clock", "--port", "0", "--delay", "60")
    with connect(server) as client:
        child = wait_for(lambda: descendants(server.proc.pid))[0]
        assert peer_of(child.pid) == f"127.0.0.1:{client.getsockname()[1]}"
    assert peer_of(server.proc.pid) is None  # the server itself only listens


def test_a_process_that_is_gone_has_no_sockets():
    assert sockets_of(4_000_000) == [] and peer_of(4_000_000) is None and not listens(4_000_000, 80)
