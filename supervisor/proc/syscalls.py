"""System call numbers and their names for this machine's architecture, in one place.

The table is chosen once, from `platform.machine()`. Only the calls a process is commonly
found in (blocked or starting up) are named; any other number reads as "syscall N", never
an error. Numbers are the kernel's: x86_64 from `asm/unistd_64.h`, aarch64 from the
generic table `asm-generic/unistd.h` that arm64 uses (it has no poll, select, epoll_wait,
pause, open or fork: its C library calls ppoll, pselect6, epoll_pwait, ... instead).
"""

import platform

X86_64 = {
    0: "read", 1: "write", 2: "open", 3: "close", 4: "stat", 5: "fstat", 6: "lstat", 7: "poll",
    8: "lseek", 9: "mmap", 10: "mprotect", 11: "munmap", 12: "brk", 13: "rt_sigaction",
    14: "rt_sigprocmask", 15: "rt_sigreturn", 16: "ioctl", 17: "pread64", 18: "pwrite64",
    19: "readv", 20: "writev", 21: "access", 22: "pipe", 23: "select", 24: "sched_yield",
    25: "mremap", 26: "msync", 28: "madvise", 32: "dup", 33: "dup2", 34: "pause", 35: "nanosleep",
    39: "getpid", 40: "sendfile", 41: "socket", 42: "connect", 43: "accept", 44: "sendto",
    45: "recvfrom", 46: "sendmsg", 47: "recvmsg", 48: "shutdown", 49: "bind", 50: "listen",
    51: "getsockname", 52: "getpeername", 53: "socketpair", 54: "setsockopt", 55: "getsockopt",
    56: "clone", 57: "fork", 58: "vfork", 59: "execve", 60: "exit", 61: "wait4", 62: "kill",
    63: "uname", 65: "semop", 70: "msgrcv", 72: "fcntl", 73: "flock", 74: "fsync", 75: "fdatasync",
    102: "getuid", 110: "getppid", 112: "setsid", 128: "rt_sigtimedwait", 130: "rt_sigsuspend",
    131: "sigaltstack", 157: "prctl", 202: "futex", 208: "io_getevents", 217: "getdents64",
    219: "restart_syscall", 220: "semtimedop", 228: "clock_gettime", 230: "clock_nanosleep",
    231: "exit_group", 232: "epoll_wait", 233: "epoll_ctl", 234: "tgkill", 247: "waitid",
    257: "openat", 262: "newfstatat", 270: "pselect6", 271: "ppoll", 273: "set_robust_list",
    275: "splice", 281: "epoll_pwait", 283: "timerfd_create", 286: "timerfd_settime",
    288: "accept4", 289: "signalfd4", 290: "eventfd2", 291: "epoll_create1", 292: "dup3",
    293: "pipe2", 295: "preadv", 296: "pwritev", 299: "recvmmsg", 302: "prlimit64",
    307: "sendmmsg", 318: "getrandom", 322: "execveat", 332: "statx", 334: "rseq",
    424: "pidfd_send_signal", 434: "pidfd_open", 435: "clone3", 437: "openat2", 438: "pidfd_getfd",
    439: "faccessat2", 441: "epoll_pwait2",
}  # fmt: skip

GENERIC = {
    4: "io_getevents", 19: "eventfd2", 20: "epoll_create1", 21: "epoll_ctl", 22: "epoll_pwait",
    23: "dup", 24: "dup3", 25: "fcntl", 29: "ioctl", 32: "flock", 56: "openat", 57: "close",
    59: "pipe2", 61: "getdents64", 62: "lseek", 63: "read", 64: "write", 65: "readv", 66: "writev",
    67: "pread64", 68: "pwrite64", 69: "preadv", 70: "pwritev", 71: "sendfile", 72: "pselect6",
    73: "ppoll", 74: "signalfd4", 76: "splice", 79: "newfstatat", 80: "fstat", 82: "fsync",
    83: "fdatasync", 85: "timerfd_create", 86: "timerfd_settime", 93: "exit", 94: "exit_group",
    95: "waitid", 98: "futex", 99: "set_robust_list", 101: "nanosleep", 113: "clock_gettime",
    115: "clock_nanosleep", 124: "sched_yield", 128: "restart_syscall", 129: "kill", 131: "tgkill",
    132: "sigaltstack", 133: "rt_sigsuspend", 134: "rt_sigaction", 135: "rt_sigprocmask",
    137: "rt_sigtimedwait", 139: "rt_sigreturn", 157: "setsid", 160: "uname", 167: "prctl",
    172: "getpid", 173: "getppid", 174: "getuid", 188: "msgrcv", 192: "semtimedop", 193: "semop",
    198: "socket", 199: "socketpair", 200: "bind", 201: "listen", 202: "accept", 203: "connect",
    204: "getsockname", 205: "getpeername", 206: "sendto", 207: "recvfrom", 208: "setsockopt",
    209: "getsockopt", 210: "shutdown", 211: "sendmsg", 212: "recvmsg", 214: "brk", 215: "munmap",
    216: "mremap", 220: "clone", 221: "execve", 222: "mmap", 226: "mprotect", 227: "msync",
    233: "madvise", 242: "accept4", 243: "recvmmsg", 260: "wait4", 261: "prlimit64",
    269: "sendmmsg", 278: "getrandom", 281: "execveat", 291: "statx", 293: "rseq",
    424: "pidfd_send_signal", 434: "pidfd_open", 435: "clone3", 437: "openat2", 438: "pidfd_getfd",
    439: "faccessat2", 441: "epoll_pwait2",
}  # fmt: skip

TABLES = {"x86_64": X86_64, "amd64": X86_64, "aarch64": GENERIC, "arm64": GENERIC}

ARCHITECTURE = platform.machine().lower()
NAMES = TABLES.get(ARCHITECTURE, {})


def name_of(number, names=NAMES):
    """The call's name ("accept4"), or "syscall N" for a number the table does not name."""
    return names.get(number) or f"syscall {number}"


def number_of(name, names=NAMES):
    """The call's number on this machine, or None where the architecture has no such call."""
    return next((number for number, known in names.items() if known == name), None)
