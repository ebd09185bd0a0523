"""Pieces every lecture program shares: flags, the address line, signals, bounded reads.

Every server prints, as its very first line and flushed, its real address in one fixed
form so that a supervisor (or a student) can tell where it listens:

    listening on tcp://HOST:PORT
    listening on udp://HOST:PORT
    listening on unix:PATH
"""

import argparse
import contextlib
import os
import random
import signal
import socket
import sys
import time
import traceback

QUESTION = b"What is the time?"
QUESTION_SIZE = 25
SECRET_ENV = "FORKWATCH_SECRET"
PTRACER_ENV = "FORKWATCH_PTRACER"
PR_SET_PTRACER = 0x59616D61  # Yama's prctl: "this process may trace me"
PR_SET_PTRACER_ANY = -1  # any process may (as an unsigned long: all bits set)
MAX_LINE = 1024


def _idle_timeout():
    """Seconds a connection may stay silent before the server frees it (a slowloris
    guard); FORKWATCH_IDLE_TIMEOUT overrides the default of 60."""
    try:
        value = float(os.environ.get("FORKWATCH_IDLE_TIMEOUT", "60"))
    except ValueError:
        return 60.0
    return value if value > 0 else 60.0


IDLE_TIMEOUT = _idle_timeout()


def tracer_from(value):
    """The tracer FORKWATCH_PTRACER names: a PID, PR_SET_PTRACER_ANY for 'any', or None."""
    value = (value or "").strip()
    if value == "any":
        return PR_SET_PTRACER_ANY
    return int(value) if value.isascii() and value.isdigit() and int(value) > 0 else None


def permit_tracer():
    """Let the process named by FORKWATCH_PTRACER read this one's stack (py-spy) under Yama's
    ptrace_scope 1, where only ancestors may. True if the kernel agreed, False if it refused
    (a kernel without Yama), None when nobody asked. The permission is not inherited, so a
    supervised program calls this again in every child it forks."""
    tracer = tracer_from(os.environ.get(PTRACER_ENV))
    if tracer is None:
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(PR_SET_PTRACER, ctypes.c_ulong(tracer), 0, 0, 0) == 0


if os.environ.get(PTRACER_ENV):  # started by the supervisor, which asked: us and each child we fork
    permit_tracer()
    os.register_at_fork(after_in_child=permit_tracer)


def base_parser(description, port, host="127.0.0.1"):
    """An argparse parser with the flags every server has: --host and --port."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default=host, help=f"address to bind (default {host})")
    parser.add_argument(
        "--port", type=int, default=port, help=f"port to bind, 0 = any free port (default {port})"
    )
    return parser


def say(*parts):
    """print() that reaches a pipe at once, as one write, so a supervisor sees whole lines
    as they happen, never interleaved with a forked child's."""
    sys.stdout.write(" ".join(str(part) for part in parts) + "\n")
    sys.stdout.flush()


def address_line(sock, unix_path=None):
    """The fixed first line naming the real address of a bound socket."""
    if unix_path is not None:
        return f"listening on unix:{unix_path}"
    scheme = "udp" if sock.type == socket.SOCK_DGRAM else "tcp"
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"listening on {scheme}://{host}:{port}"


def announce(sock, unix_path=None):
    say(address_line(sock, unix_path))


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (a supervisor's Stop). It is a KeyboardInterrupt, so every
    `except KeyboardInterrupt` cleans up as after Ctrl-C, and a program that wants to say
    which of the two happened catches this one first."""


def stop_on_sigterm():
    """Make SIGTERM behave like Ctrl-C (raising Terminated), so cleanup runs on stop; and
    make Ctrl-C raise KeyboardInterrupt even when the program was started in the
    background by a shell, which starts it with SIGINT ignored."""

    def terminate(signum, frame):
        raise Terminated

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def reset_signals_in_child():
    """A forked child must not run its parent's shutdown code (kill_processes() and all)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)


HELD_ACROSS_FORK = {signal.SIGINT, signal.SIGTERM, signal.SIGCHLD}


def fork():
    """os.fork() for a program that prints and handles signals.

    Output is flushed first, so the child never prints the parent's buffered lines a second
    time. Signals are held across the fork: the child resets the parent's handlers before
    any signal can reach it (so Ctrl-C never makes a child run the parent's shutdown), and
    the parent gets its signals back once fork() has returned. Returns what os.fork()
    returns: 0 in the child, the child's PID in the parent.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    before = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_ACROSS_FORK)
    try:
        pid = os.fork()
        if pid == 0:
            reset_signals_in_child()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
    return pid


def reap_exited(pids):
    """waitpid() each PID in `pids` that has exited, without blocking, and remove it from
    the list. By PID, never waitpid(-1): a PID leaves the list only once reaped, so a
    listed PID is always our own child (or its zombie), never a reused number. Safe to
    re-enter from a SIGCHLD handler that runs in the middle of it."""
    for pid in list(pids):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # reaped meanwhile by the handler that interrupted us
            done = pid
        if done:
            with contextlib.suppress(ValueError):
                pids.remove(pid)


def has_exited(pid):
    """True when our child `pid` has exited, without reaping it (WNOWAIT keeps the zombie)."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


@contextlib.contextmanager
def child_process():
    """The body of a forked child, which ends here whatever happens in it: os._exit(0)
    when the work is done or its client went away (an OSError, said in one line),
    os._exit(1) with a traceback after anything else. It never returns, so a child can
    never fall back into its parent's loop."""
    status = 0
    try:
        yield
    except OSError as exc:
        say(f"client gone: {exc}")
    except BaseException:
        status = 1
        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(status)


def seconds_text(seconds):
    """A number of seconds as the lecture's lines say it: exactly 10 is "ten seconds" (the
    slides' words), 1 is "1 second", any other number as Python's `{:g}` prints it (which
    is also how forkwatch passes it on a command line): 2 -> "2 seconds", 2.5 -> "2.5
    seconds", 0.25 -> "0.25 seconds"."""
    if seconds == 10:
        return "ten seconds"
    if seconds == 1:
        return "1 second"
    return f"{seconds:g} seconds"


def spend(seconds, busy=False):
    """Take `seconds`: sleep them, or with `busy` spend them computing (see compute)."""
    if busy:
        compute(seconds)
    else:
        time.sleep(seconds)


def compute(seconds):
    """Spend `seconds` of CPU work. It is measured on the calling thread's own CPU clock, so
    each handler does the same amount of work whatever else runs: threads of one process
    then take turns on the GIL (one core for all of them), while forked processes run side
    by side on the machine's cores."""
    done_at = time.thread_time() + seconds
    while time.thread_time() < done_at:
        sum(range(2000))


def seconds_option(text):
    """argparse type: a finite number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"seconds must be 0 or more, and finite: {text!r}")
    return value


def shown(data):
    """Bytes from a client as text fit for a console line (never raises on bad UTF-8)."""
    return data.decode("utf-8", "backslashreplace")


def short_question(data):
    """Say on the console that a client sent fewer than 25 bytes and closed; returns the
    one-line error the client gets instead of the time."""
    say(f'short question: {len(data)} of {QUESTION_SIZE} bytes "{shown(data)}"')
    return f"error: short question, {len(data)} of {QUESTION_SIZE} bytes\n".encode()


def pad_question(text=QUESTION):
    """The lecture's question: exactly 25 bytes, padded with spaces."""
    return text.ljust(QUESTION_SIZE)[:QUESTION_SIZE]


def clock_answer(now_text):
    """The clock's reply: ctime() (24 characters) and a newline, 25 bytes in all."""
    return (now_text + "\n").encode("ascii")


def recv_exactly(sock, size):
    """Read until `size` bytes arrived or the peer closed; returns what came (maybe less)."""
    chunks = []
    got = 0
    while got < size:
        chunk = sock.recv(size - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


class LineTooLong(Exception):
    """A client sent more than the allowed bytes without a newline."""


def read_line(rfile, limit=MAX_LINE):
    """One newline-terminated line from a buffered reader, at most `limit` bytes.

    Returns the line without its line ending, or None at EOF before a complete line
    (a partial line at EOF is not a line). Raises LineTooLong past the limit.
    """
    raw = rfile.readline(limit + 1)
    if not raw.endswith(b"\n"):
        if len(raw) > limit:
            raise LineTooLong()
        return None
    return raw.rstrip(b"\r\n")


def resolve_secret(given, pick):
    """The game's secret: --secret, else $FORKWATCH_SECRET, else pick() (random)."""
    if given not in (None, ""):
        return given
    from_env = os.environ.get(SECRET_ENV, "")
    if from_env:
        return from_env
    return pick()


def random_number():
    return str(random.randint(1, 100))


def run_forever(server, *lines, on_stop=None):
    """Announce the server (its address line, then `lines`) and serve_forever() until
    Ctrl-C or SIGTERM, then close the server cleanly. SIGTERM is handled before the
    address line goes out: a supervisor may Stop the server the moment it reads it."""
    stop_on_sigterm()
    try:
        with server:
            announce(server.socket)
            for line in lines:
                say(line)
            server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if on_stop is not None:
            on_stop()
        say("server stopped")
    return 0


def fail(message):
    print(f"error: {message}", file=sys.stderr, flush=True)
    return 1
