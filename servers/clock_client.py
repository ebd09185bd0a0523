"""The lecture's clock client: ask the time once and print the answer.

    python -m servers.clock_client                 # TCP, 127.0.0.1:12091
    python -m servers.clock_client --udp --port 12093
    python -m servers.clock_client --unix /tmp/clock

The question is padded to 25 bytes; the answer is read until all 25 bytes are in (one
recv() may return only part of it) or the server closes.
"""

import socket
import sys

from servers.common import QUESTION_SIZE, base_parser, pad_question, recv_exactly, say, shown

DEFAULT_PORT = 12091
TIMEOUT = 30.0


def ask_time(host="127.0.0.1", port=DEFAULT_PORT, udp=False, unix=None, timeout=TIMEOUT):
    """One question, one answer. Returns the answer's text without its newline."""
    family = socket.AF_UNIX if unix else socket.AF_INET
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    address = unix if unix else (host, port)
    with socket.socket(family, kind) as sock:
        sock.settimeout(timeout)
        if udp and unix:
            # A Unix datagram client needs an address of its own to get a reply.
            sock.bind("")
        sock.connect(address)
        sock.sendall(pad_question())
        if udp:
            data = sock.recv(QUESTION_SIZE * 4)
        else:
            data = recv_exactly(sock, QUESTION_SIZE)
    return shown(data).rstrip("\n")


def main(argv=None):
    parser = base_parser(__doc__.splitlines()[0], DEFAULT_PORT)
    parser.add_argument("--udp", action="store_true", help="ask over UDP")
    parser.add_argument("--unix", metavar="PATH", help="ask over the Unix socket at PATH")
    args = parser.parse_args(argv)
    try:
        answer = ask_time(args.host, args.port, args.udp, args.unix)
    except OSError as exc:
        print(f"error: cannot ask the time: {exc}", file=sys.stderr)
        return 1
    say(answer)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
