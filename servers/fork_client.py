"""The lecture's looping clock client (clockforkclient): ask, sleep 3-10 s, ask again.

    python -m servers.fork_client --port 12092
    python -m servers.fork_client --port 12092 --rounds 3 --min 0 --max 0

It keeps one connection open and asks the time every randint(--min, --max) seconds, so
the forking server's child serving it stays alive while it loops. It stops after --rounds
answers (default: forever), when the server closes, or on Ctrl-C / SIGTERM.
"""

import random
import socket
import sys
import time

from servers.common import QUESTION_SIZE, base_parser, pad_question, recv_exactly, say, shown, stop_on_sigterm

DEFAULT_PORT = 12092
ANSWER_TIMEOUT = 120.0


def loop(host, port, rounds, low, high):
    with socket.create_connection((host, port), timeout=ANSWER_TIMEOUT) as sock:
        say(f"connected to {host}:{port} from {sock.getsockname()[1]}")
        done = 0
        while rounds is None or done < rounds:
            sock.sendall(pad_question())
            data = recv_exactly(sock, QUESTION_SIZE)
            if not data:
                say("server closed the connection")
                return 0
            answer = shown(data).rstrip("\n")
            say(answer)
            if answer.startswith(("server busy", "error")):
                return 2
            done += 1
            if rounds is not None and done >= rounds:
                break
            time.sleep(random.randint(low, high))
    return 0


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
