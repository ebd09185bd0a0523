"""The lecture's forking clock server: one child process per client.

    python -m servers.forking_clock                  # lecture: each child is blocked 10 s first
    python -m servers.forking_clock --delay 0 --reap
    python -m servers.forking_clock --delay 2 --busy # the 2 s spent as CPU work, not sleeping

The parent blocks in accept(); for each client it forks, records the child in
`active_processes` and goes back to accept(). The child, in handle_client(), is blocked for
--delay seconds, then answers every 25-byte question with ctime() until the client leaves.
Ctrl-C (SIGINT) runs the lecture's shutdown: kill_processes() kills each child with
SIGKILL, then the server exits with code 0. SIGTERM (a supervisor's Stop) does the same
and says so in its first line.

The console, as on the slides (PIDs, ports and times vary):

    listening on tcp://127.0.0.1:12092          (forkwatch's address line, always first)
    server is listening to 12092
    server connected at ('127.0.0.1', 37320)    (the parent, for each client)
    appending PID 7086
    client is blocked for ten seconds ...       (the child, 7086)
    handling a client ...
    received "What is the time?        " from client
    sending "Sat Nov 29 10:00:00 2025" to client
    closing client socket, exiting child process
    ctrl c pressed, closing server              (the parent, on Ctrl-C)
    active processes : [7086, 7090]
    -> killing process 7086
    -> killing process 7090

With a --delay other than 10 the child says the real number: `client is blocked for 2
seconds ...`, `... for 2.5 seconds ...` (see common.seconds_text).

As in the lecture, nobody reaps exited children unless --reap is given: they stay zombies
(state Z) until the parent exits. That is the lesson; --reap is its fix (on SIGCHLD, and at
each accept). Past --max-children children not yet reaped (zombies count), a new client
gets a one-line `server busy` refusal instead of a fork, so a flood cannot exhaust the
machine.
"""

import contextlib
import os
import signal
import socket
import time

from servers.common import (
    IDLE_TIMEOUT,
    QUESTION_SIZE,
    Terminated,
    announce,
    base_parser,
    child_process,
    clock_answer,
    compute,
    fail,
    fork,
    has_exited,
    reap_exited,
    recv_exactly,
    say,
    seconds_option,
    seconds_text,
    short_question,
    shown,
    stop_on_sigterm,
)

DEFAULT_PORT = 12092
ACCEPT_RETRY = 0.2


def handle_client(sck, delay, busy):
    """Handling a client via the socket sck (in the child, which ends here)."""
    with child_process():  # fix: the child always exits here, never into the parent's loop
        say(f"client is blocked for {seconds_text(delay)} ...")
        if busy:  # forkwatch adds: the delay spent as CPU work (--busy)
            compute(delay)
        else:
            time.sleep(delay)
        say("handling a client ...")
        for data in questions(sck):  # fix: each question read in full (25 bytes), until the client leaves
            say(f'received "{shown(data)}" from client')
            now = time.ctime()
            say(f'sending "{now}" to client')
            sck.sendall(clock_answer(now))
        say("closing client socket, exiting child process")
        sck.close()


active_processes = []


def kill_processes():
    """kills handler processes"""
    for pid in active_processes:
        say(f"-> killing process {pid}")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in active_processes:  # fix: each killed child is reaped, none is left a zombie
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    active_processes.clear()


def main(argv=None):
    args = parse_options(argv)
    try:
        server = listen(args.host, args.port)
    except OSError as exc:
        return fail(f"cannot listen: {exc}")
    if args.reap:  # fix: --reap reaps each child as it exits (the lecture leaves zombies)
        signal.signal(signal.SIGCHLD, lambda signum, frame: reap_exited(active_processes))
    stop_on_sigterm()  # before the address line: a Stop may come the moment it is read
    try:
        announce(server)
        say("server is listening to", server.getsockname()[1])
        while True:
            client, address = accept_a_client(server, args)  # fix: reaping and the child cap, here
            say("server connected at", address)
            try:
                child_pid = fork()  # fix: output flushed first; the child drops the parent's signal handlers
            except OSError as exc:  # fix: out of processes, this client is refused and the server goes on
                refuse(client, address, "server busy", f"fork() failed: {exc}")
                continue
            if child_pid == 0:
                server.close()  # fix: the child lets go of the listening socket
                handle_client(client, args.delay, args.busy)
            say("appending PID", child_pid)
            active_processes.append(child_pid)
            client.close()  # fix: the parent closes its copy, so the client sees EOF
    except KeyboardInterrupt as stop:
        shutting_down()  # fix: no reaping and no second signal while kill_processes() runs
        if isinstance(stop, Terminated):  # SIGTERM, a supervisor's Stop: the same shutdown
            say("SIGTERM received, closing server")
        else:
            say("ctrl c pressed, closing server")
        say("active processes :", active_processes)
        kill_processes()
        server.close()
    return 0


# --- what forkwatch adds around the lecture's program --------------------------------------


def parse_options(argv):
    parser = base_parser(__doc__.splitlines()[0], DEFAULT_PORT)
    parser.add_argument(
        "--delay",
        type=seconds_option,
        default=10.0,
        help="seconds a child is blocked before it answers (lecture: 10); its line says the number",
    )
    parser.add_argument(
        "--busy",
        action="store_true",
        help="spend the delay as CPU work instead of sleeping (forked children use several cores)",
    )
    parser.add_argument(
        "--reap", action="store_true", help="reap exited children (without it they stay zombies)"
    )
    parser.add_argument(
        "--max-children",
        type=int,
        default=100,
        help="children not yet reaped at most, zombies included; past it a client gets `server busy`",
    )
    args = parser.parse_args(argv)
    if args.max_children < 1:
        parser.error("--max-children must be 1 or more")
    return args


def listen(host, port):
    """The lecture's server socket: bound and listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = socket.socket(family, socket.SOCK_STREAM)
    try:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart can bind at once
        server.bind((host, port))
        server.listen(socket.SOMAXCONN)  # a burst of clients waits in the backlog
    except OSError:
        server.close()
        raise
    return server


def accept_a_client(server, args):
    """server.accept(), blocking there as on the slides, with forkwatch's guards around it.

    With --reap, children that exited are reaped first (SIGCHLD reaps the rest while the
    parent waits; a signal handler runs and accept() is retried, PEP 475). A client past
    --max-children children not yet reaped gets a one-line refusal and is closed; a failed
    accept (out of descriptors) is said, and tried again a moment later.
    """
    while True:
        if args.reap:
            reap_exited(active_processes)
        try:
            client, address = server.accept()
        except ConnectionAbortedError:
            continue
        except OSError as exc:
            say(f"accept failed: {exc}")
            time.sleep(ACCEPT_RETRY)
            continue
        if len(active_processes) < args.max_children:
            return client, address
        waiting = children_text(len(active_processes))
        zombies = 0 if args.reap else sum(has_exited(pid) for pid in active_processes)
        if zombies:
            refuse(
                client,
                address,
                f"server busy: {waiting} not yet reaped — turn on reaping or Stop",
                f"{waiting} not yet reaped ({zombies} of them zombies)",
            )
        else:
            refuse(client, address, "server busy", f"{waiting} still serving")


def children_text(count):
    return f"{count} child" if count == 1 else f"{count} children"


def refuse(client, address, reply, why):
    """One line to the client (the plain `server busy`, or why and what helps) and one on
    the console, instead of a fork."""
    say(f"server busy, refusing {address}: {why}")
    with contextlib.suppress(OSError):
        client.sendall(reply.encode() + b"\n")
    client.close()


def questions(sck):
    """Each 25-byte question from the client, read in full even when it arrives in pieces,
    until the client leaves, stays silent for the idle timeout, or sends a short question
    (which gets an error line instead of the time)."""
    sck.settimeout(IDLE_TIMEOUT)
    while True:
        try:
            data = recv_exactly(sck, QUESTION_SIZE)
        except TimeoutError:
            say(f"the client asked nothing for {IDLE_TIMEOUT:g} s")
            return
        except ConnectionError:
            return
        if len(data) == QUESTION_SIZE:
            yield data
            continue
        if data:
            with contextlib.suppress(OSError):
                sck.sendall(short_question(data))
        return


def shutting_down():
    """From here on the parent only shuts down: nothing is reaped any more (the list stays
    as printed, and every PID in it is still our child to kill), and a second Ctrl-C or
    SIGTERM cannot cut kill_processes() short."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


if __name__ == "__main__":
    raise SystemExit(main())
