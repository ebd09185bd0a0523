"""The syscall table against the kernel's own numbers: its headers where installed, and
the running kernel itself by experiment."""

import ctypes
import os
import platform
import re

from supervisor.proc import syscalls

HEADERS = {
    "x86_64": ("/usr/include/x86_64-linux-gnu/asm/unistd_64.h", "/usr/include/asm/unistd_64.h"),
    "aarch64": ("/usr/include/asm-generic/unistd.h",),
}
TABLE_OF = {"x86_64": syscalls.X86_64, "aarch64": syscalls.GENERIC}


def header_numbers(path):
    """{name: number} from a kernel header, following the generic table's __NR3264 aliases."""
    with open(path) as handle:
        text = handle.read()
    numbers = {}
    for name, number in re.findall(r"#define __NR(?:3264)?_(\w+)\s+(\d+)", text):
        numbers.setdefault(name, int(number))
    for alias, target in re.findall(r"#define __NR_(\w+)\s+__NR3264_(\w+)", text):
        if target in numbers:
            numbers[alias] = numbers[target]
    return numbers


def test_every_name_has_the_kernel_headers_number():
    compared = 0
    for architecture, paths in HEADERS.items():
        path = next((p for p in paths if os.path.exists(p)), None)
        if path is None:
            continue
        numbers = header_numbers(path)
        for number, name in TABLE_OF[architecture].items():
            assert numbers.get(name) == number, f"{architecture}: {name} is {numbers.get(name)}, not {number}"
        compared += 1
    libc = ctypes.CDLL(None, use_errno=True)
    for name, expected in (("getpid", os.getpid()), ("getppid", os.getppid()), ("getuid", os.getuid())):
        assert libc.syscall(syscalls.number_of(name)) == expected, name  # the running kernel agrees
        compared += 1
    assert compared >= 3


def test_the_table_is_the_machines():
    machine = platform.machine().lower()
    assert syscalls.ARCHITECTURE == machine
    assert syscalls.NAMES is syscalls.TABLES.get(machine, {})
    assert syscalls.NAMES, f"no syscall table for {machine}"


def test_the_common_blocking_calls_are_named():
    wanted = {
        "accept", "accept4", "recvfrom", "recvmsg", "read", "readv", "ppoll", "pselect6",
        "epoll_pwait", "clock_nanosleep", "nanosleep", "wait4", "waitid", "futex", "connect",
        "sendto", "write", "rt_sigsuspend",
    }  # fmt: skip
    for table in (syscalls.X86_64, syscalls.GENERIC):
        assert wanted <= set(table.values())
    assert {"poll", "select", "epoll_wait", "pause"} <= set(syscalls.X86_64.values())


def test_an_unknown_number_reads_as_its_number():
    assert syscalls.name_of(451) == "syscall 451"
    assert syscalls.name_of(99999) == "syscall 99999"
    assert syscalls.name_of(288, syscalls.X86_64) == "accept4"
    assert syscalls.name_of(242, syscalls.GENERIC) == "accept4"
    assert syscalls.number_of("poll", syscalls.GENERIC) is None
