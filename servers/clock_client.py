"""The lecture's clock client: ask the time once and print the answer.

    python -m servers.clock_client                 # TCP, 127.0.0.1:12091
    python -m servers.clock_client --udp --port 12093
    python -m servers.clock_client --unix /tmp/clock [--udp]

The console, as on the slides:

    client is connected
    Sat Nov 29 10:00:00 2025

The question is padded to 25 bytes; the answer is read until all 25 bytes are in (one
recv() may return only part of it) or the server closes. Exit code 0 once the answer is
printed, 1 when the server cannot be reached.
"""

import socket
import sys

from servers.common import QUESTION_SIZE, base_parser, pad_question, recv_exactly, say, shown

DEFAULT_PORT = 12091
TIMEOUT = 30.0


def main(argv=None):
    args = parse_options(argv)
    try:
        with connect(args) as client:
            say("client is connected")
            client.sendall(pad_question())
            data = receive_answer(client, args.udp)  # fix: all 25 bytes, even when they come in pieces
    except OSError as exc:
        print(f"error: cannot ask the time: {exc}", file=sys.stderr)
        return 1
    say(shown(data).rstrip("\n"))
    return 0


# --- what forkwatch adds around the lecture's program --------------------------------------


def parse_options(argv):
    parser = base_parser(__doc__.splitlines()[0], DEFAULT_PORT)
    parser.add_argument(
        "--udp", action="store_true", help="ask over UDP (with --unix: a Unix datagram socket)"
    )
    parser.add_argument("--unix", metavar="PATH", help="ask over the Unix socket at PATH")
    return parser.parse_args(argv)


def connect(args, timeout=TIMEOUT):
    """A socket connected to the server: TCP, UDP, Unix stream or Unix datagram."""
    family = socket.AF_UNIX if args.unix else socket.AF_INET
    kind = socket.SOCK_DGRAM if args.udp else socket.SOCK_STREAM
    client = socket.socket(family, kind)
    try:
        client.settimeout(timeout)
        if args.udp and args.unix:
            client.bind("")  # a Unix datagram client needs an address of its own to get a reply
        client.connect(args.unix or (args.host, args.port))
    except OSError:
        client.close()
        raise
    return client


def receive_answer(client, udp):
    if udp:
        return client.recv(QUESTION_SIZE * 4)  # one datagram is the whole answer
    return recv_exactly(client, QUESTION_SIZE)


if __name__ == "__main__":
    raise SystemExit(main())
