"""The lecture's looping clock client (clockforkclient): ask, sleep 3-10 s, ask again.

    python -m servers.fork_client --port 12092
    python -m servers.fork_client --port 12092 --rounds 3 --min 0 --max 0

The console, as on the slides (the port and the numbers vary):

    client is connected
    connected from ('127.0.0.1', 37320)        (forkwatch's line: the server's child names this peer)
    Sat Nov 29 10:00:10 2025
    client sleeps for 7 seconds
    Sat Nov 29 10:00:17 2025

It keeps one connection open and asks the time every randint(--min, --max) seconds, so
the forking server's child serving it stays alive while it loops. It stops after --rounds
answers (exit code 0; default: forever), when the server closes (0), when the server
refuses it with `server busy` (2), or on Ctrl-C / SIGTERM (0).
"""

import random
import socket
import sys
import time

from servers.common import base_parser, pad_question, say, shown, stop_on_sigterm

DEFAULT_PORT = 12092
ANSWER_TIMEOUT = 120.0
REPLY_LIMIT = 200


def loop(host, port, rounds, low, high):
    client = socket.create_connection((host, port), timeout=ANSWER_TIMEOUT)
    with client, client.makefile("rb") as replies:
        say("client is connected")
        say("connected from", client.getsockname())
        done = 0
        while True:
            client.sendall(pad_question())
            data = replies.readline(REPLY_LIMIT)  # fix: the whole reply line, even when it comes in pieces
            if not data:
                say("server closed the connection")
                return 0
            answer = shown(data).rstrip("\n")
            say(answer)
            if answer.startswith(("server busy", "error")):
                return 2
            done += 1
            if rounds is not None and done >= rounds:
                return 0
            nbr = random.randint(low, high)
            say(f"client sleeps for {nbr} seconds")
            time.sleep(nbr)


def main(argv=None):
    parser = base_parser(__doc__.splitlines()[0], DEFAULT_PORT)
    parser.add_argument(
        "--rounds", type=int, default=None, help="answers to get before exiting (default: forever)"
    )
    parser.add_argument("--min", type=int, default=3, help="shortest sleep between questions, seconds")
    parser.add_argument("--max", type=int, default=10, help="longest sleep between questions, seconds")
    args = parser.parse_args(argv)
    if args.min < 0 or args.max < args.min:
        parser.error("need 0 <= --min <= --max")
    stop_on_sigterm()
    try:
        return loop(args.host, args.port, args.rounds, args.min, args.max)
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
