"""The lecture's forking clock server: one child process per client.

    python -m servers.forking_clock                 # lecture: each child waits 10 s first
    python -m servers.forking_clock --delay 0 --reap

The parent accepts, forks, closes its copy of the client socket, and records the child in
`active_processes`. The child waits --delay seconds, then answers every 25-byte question
with ctime() until the client leaves. On Ctrl-C or SIGTERM the parent runs
kill_processes(): SIGKILL to each child, as in the lecture.

As in the lecture, nobody reaps exited children unless --reap is given: they stay zombies
(state Z) until the parent exits. That is the lesson; --reap is its fix. Past
--max-children live (non-zombie) children, a new client gets `server busy` instead of a
fork, so a flood cannot exhaust the machine.
"""

import os
import select
import signal
import socket
import sys
import time

from servers.common import (
    IDLE_TIMEOUT,
    QUESTION_SIZE,
    announce,
    base_parser,
    clock_answer,
    fail,
    recv_exactly,
    reset_signals_in_child,
    say,
    shown,
    stop_on_sigterm,
)

DEFAULT_PORT = 12092
ACCEPT_TICK = 0.2

active_processes = []


def has_exited(pid):
    """True when the child has exited, without reaping it (WNOWAIT keeps the zombie)."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def live_children():
    return [pid for pid in active_processes if not has_exited(pid)]


def reap_exited():
    """Reap each exited child by its PID (never waitpid(-1)) and forget it."""
    for pid in list(active_processes):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            active_processes.remove(pid)


def kill_processes():
    """The lecture's kill_processes(): SIGKILL every child, then reap them all.

    A PID stays in active_processes until it is reaped, so it cannot have been reused by
    another process: the signal can only reach our own child (or its zombie).
    """
    for pid in active_processes:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    killed = len(active_processes)
    for pid in active_processes:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    active_processes.clear()
    return killed


def serve_client(conn, addr, delay):
    """The child's work: wait, then answer every question until the client leaves."""
    conn.settimeout(IDLE_TIMEOUT)
    if delay > 0:
        time.sleep(delay)
    while True:
        try:
            question = recv_exactly(conn, QUESTION_SIZE)
        except TimeoutError:
            say(f"{addr} asked nothing for {IDLE_TIMEOUT:.0f} s, closing")
            return
        except ConnectionError:
            return
        if not question:
            return
        if len(question) < QUESTION_SIZE:
            say(f"short question from {addr}: {len(question)} of {QUESTION_SIZE} bytes")
            reply = f"error: short question, {len(question)} of {QUESTION_SIZE} bytes\n".encode()
            try:
                conn.sendall(reply)
            except OSError:
                pass
            return
        say(f'read "{shown(question)}" from client')
        now = time.ctime()
        say(f'writing "{now}" to client')
        try:
            conn.sendall(clock_answer(now))
        except OSError:
            return


def run_child(listener, conn, addr, delay):
    """Runs in the forked child; never returns."""
    status = 0
    try:
        reset_signals_in_child()
        listener.close()
        serve_client(conn, addr, delay)
    except BaseException:  # the child must never fall back into the parent's loop
        status = 1
    finally:
        try:
            conn.close()
        finally:
            sys.stdout.flush()
            os._exit(status)


def refuse(conn, addr):
    say(f"server busy, refusing {addr}")
    try:
        conn.sendall(b"server busy\n")
    except OSError:
        pass
    conn.close()


def serve(listener, delay, reap, max_children):
    while True:
        if reap:
            reap_exited()
        ready, _, _ = select.select([listener], [], [], ACCEPT_TICK)
        if not ready:
            continue
        try:
            conn, addr = listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            continue
        except OSError as exc:  # e.g. EMFILE: out of descriptors; wait and go on
            say(f"accept failed: {exc}")
            time.sleep(ACCEPT_TICK)
            continue
        conn.setblocking(True)
        if len(live_children()) >= max_children:
            refuse(conn, addr)
            continue
        say("connected at", addr)
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError as exc:
            say(f"fork failed: {exc}")
            refuse(conn, addr)
            continue
        if pid == 0:
            run_child(listener, conn, addr, delay)
        conn.close()  # the lecture forgot this: the client never saw EOF
        active_processes.append(pid)
        say(f"forked child {pid} for {addr}")


def make_listener(host, port):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(socket.SOMAXCONN)
    listener.setblocking(False)
    return listener


def main(argv=None):
    parser = base_parser(__doc__.splitlines()[0], DEFAULT_PORT)
    parser.add_argument(
        "--delay", type=float, default=10.0, help="seconds a child waits before answering (lecture: 10)"
    )
    parser.add_argument(
        "--reap", action="store_true", help="reap exited children (without it they stay zombies)"
    )
    parser.add_argument(
        "--max-children", type=int, default=100, help="live children at most; more clients get `server busy`"
    )
    args = parser.parse_args(argv)
    if args.delay < 0 or args.max_children < 1:
        parser.error("--delay must be >= 0 and --max-children >= 1")
    try:
        listener = make_listener(args.host, args.port)
    except OSError as exc:
        return fail(f"cannot listen: {exc}")
    announce(listener)
    say(f"server is listening to {listener.getsockname()[1]}")
    stop_on_sigterm()
    try:
        serve(listener, args.delay, args.reap, args.max_children)
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()
        killed = kill_processes()
        say(f"killed {killed} children")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
