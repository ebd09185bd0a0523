"""What a descriptor is, for this test process's own sockets and pipes: borrowed through a
pidfd, and from the kernel's tables where borrowing is refused."""

import os
import socket

from supervisor.proc.descriptors import CONNECTION, DATAGRAM, LISTENING, PIPE, UNIX, Descriptors
from supervisor.proc.stat import read_stat

ME = os.getpid()


def inode_of(sock):
    return os.stat(sock.fileno()).st_ino


def test_the_kernels_tables_say_the_same_as_the_sockets(tmp_path):
    found = Descriptors()
    start = read_stat(ME).start_ticks
    with (
        socket.socket() as listener,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
        socket.socket(socket.AF_UNIX) as unix_listener,
    ):
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        udp.bind(("127.0.0.1", 0))
        path = str(tmp_path / "clock.sock")
        unix_listener.bind(path)
        unix_listener.listen()
        with (
            socket.create_connection(listener.getsockname()) as client,
            socket.socket(socket.AF_UNIX) as unix_client,
        ):
            server_side, _ = listener.accept()
            unix_client.connect(path)
            unix_side, _ = unix_listener.accept()
            with server_side, unix_side:
                peer = f"127.0.0.1:{client.getsockname()[1]}"
                cases = [
                    (listener, LISTENING, f"listening socket :{listener.getsockname()[1]}"),
                    (server_side, CONNECTION, f"connection with {peer}"),
                    (udp, DATAGRAM, f"udp socket :{udp.getsockname()[1]}"),
                    (unix_listener, LISTENING, f"listening unix socket {path}"),
                    (unix_side, UNIX, f"unix socket {path}"),
                ]
                for sock, kind, text in cases:
                    borrowed = found.target(ME, start, sock.fileno())
                    from_tables = found.from_tables(sock.fileno(), inode_of(sock))
                    assert (borrowed.kind, borrowed.text) == (kind, text)
                    assert from_tables == borrowed, text


def test_a_reused_descriptor_number_is_described_anew():
    """The cache is keyed by the descriptor's link: the same number reused for a pipe is
    a pipe, not the socket it was."""
    me = os.getpid()
    start = read_stat(me).start_ticks
    found = Descriptors()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        number = listener.fileno()
        first = found.target(me, start, number)
        assert first.text == f"listening socket :{listener.getsockname()[1]}"
        assert found.target(me, start, number) is first  # cached
        read_end, write_end = os.pipe()
        try:
            os.dup2(read_end, number)  # the socket's number now names the pipe
            assert found.target(me, start, number).kind == PIPE
        finally:
            os.close(read_end)
            os.close(write_end)
    found.prune(set())
    assert found.target(me, start, number) is None  # closed
