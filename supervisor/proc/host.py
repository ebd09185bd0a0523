"""The dashboard's own process and machine: the C library (loaded once), child subreaper,
the open-files limit, the machine's LAN addresses and how busy its cores are."""

import ctypes
import resource
import socket

import psutil

PR_SET_CHILD_SUBREAPER = 36
_libc = None


def libc():
    """The C library, for the system calls Python does not wrap (errno kept)."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def last_errno():
    return ctypes.get_errno()


def become_subreaper():
    """Orphans of our servers get reparented to us (and we reap them), not to PID 1."""
    try:
        return libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def raise_open_files_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft
        return target
    return soft


def lan_addresses():
    """This machine's IPv4 addresses other than loopback (for the Join panel)."""
    found = []
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                found.append(address.address)
    return sorted(set(found))


def cores_busy_seconds():
    """(cores, CPU seconds all of them have spent on something other than idling since
    boot): the difference of two readings is how many cores were busy meanwhile."""
    times = psutil.cpu_times()
    busy = ("user", "nice", "system", "irq", "softirq", "steal")  # guest time is counted in user
    return psutil.cpu_count() or 1, sum(getattr(times, name, 0.0) for name in busy)
