"""A student's program under the dashboard, with real processes and sockets: added by
--serve or by a config table, ready once its listening socket is in its tree (never by a
probe), marked as student code, in its own session and working folder under its limits,
and its tree, what each process is doing, its stack, Ctrl-C and the kill buttons working
as for the lecture's servers."""

import os
import resource
import socket

import psutil

from supervisor.proc import limits
from tests.core.check_support import SOLUTIONS
from tests.helpers import CTIME, QUESTION, recv_line, start_ready, wait_for, wait_state

SECRET = os.path.join(SOLUTIONS, "secret_per_process.py")


def guesser(server):
    """A client connected to the server, with one guess answered (its child is serving it)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(b"0\n")
    assert recv_line(sock) == "wrong"
    return sock


def live_children(manager, name):
    root = manager.servers[name].pid
    return [
        row for row in manager.server_detail(name)["tree"] if row["pid"] != root and row["status"] != "zombie"
    ]


def test_a_served_file_runs_as_student_code_in_its_session_folder_and_limits(manager_factory):
    manager, recorder = manager_factory(
        serve=[{"file": SECRET, "exercise": "secret_number", "name": "team3"}]
    )
    server = start_ready(manager, "team3")
    listed = {info["name"]: info for info in manager.list_servers()}
    assert listed["team3"]["student"] is True and listed["team3"]["exercise"] == "secret_number"
    assert listed["secret_number"]["student"] is False
    assert server.port and server.port != 0, "a free port picked for this start"
    assert any(e["kind"] == "ready" and "team3" in e["text"] for e in manager.history.after(0))

    proc = psutil.Process(server.pid)
    assert proc.cmdline()[-3:] == [SECRET, "--port", str(server.port)], (
        "the wrapper exec'd the program itself"
    )
    assert os.getsid(server.pid) == server.pid, "its own session"
    folder = manager.server_detail("team3")["limits"]["workdir"]
    assert proc.cwd() == folder and folder.endswith(os.path.join("students", "team3"))
    assert proc.rlimit(psutil.RLIMIT_AS) == (2048 << 20, 2048 << 20)
    assert proc.rlimit(psutil.RLIMIT_CPU) == (300, 300)
    cap = server.limits()["process_cap"]
    if cap == "pids.max":
        assert manager.server_detail("team3")["pids"]["max"] == 64
        assert proc.rlimit(psutil.RLIMIT_NPROC)[0] == resource.getrlimit(resource.RLIMIT_NPROC)[0]
    else:
        assert cap == "RLIMIT_NPROC", "as root without cgroups a student's server would have no process cap"
        soft = proc.rlimit(psutil.RLIMIT_NPROC)[0]  # 64 more tasks than its user ran at its start
        assert soft != resource.RLIM_INFINITY and 64 < soft <= limits.user_tasks(os.getuid()) + 64 + 32, soft

    root_row = manager.server_detail("team3")["tree"][0]
    assert root_row["pid"] == server.pid and root_row["doing"], root_row
    frames = manager.stack(server.pid, every_line=True)["frames"]
    assert any(frame["file"] == SECRET for frame in frames), frames


def test_the_kill_buttons_and_ctrl_c_work_on_a_students_forking_server(manager_factory):
    manager, recorder = manager_factory(
        serve=[{"file": SECRET, "exercise": "secret_number", "name": "team3"}]
    )
    server = start_ready(manager, "team3")
    first, second = guesser(server), guesser(server)
    try:
        children = wait_for(
            lambda: len(rows := live_children(manager, "team3")) == 2 and rows, 10, "two children"
        )
        one = children[0]
        assert manager.signal_process(one["pid"], one["create_time"], "SIGKILL")["pid"] == one["pid"]
        wait_for(lambda: len(live_children(manager, "team3")) == 1, 10, "the killed child gone")
        result = manager.kill_children("team3")
        assert result["killed"] == [children[1]["pid"]]
        wait_for(lambda: not live_children(manager, "team3"), 10, "every child gone")
    finally:
        first.close()
        second.close()
    manager.interrupt("team3")
    info = wait_state(manager, "team3", "EXITED")
    assert info["exit_class"] == "finished" and "Ctrl-C" in info["reason"], info


def test_a_config_table_server_is_ready_without_a_probe(manager_factory):
    """The lecture's clock with --once, as a student's command: a probe connection would be
    its one client and end it. It is RUNNING with nobody served, then serves us."""
    command = ["{python}", "-m", "servers.clock", "--once", "--port", "{port}"]
    manager, recorder = manager_factory(servers={"once": {"command": command, "exercise": "clock"}})
    server = start_ready(manager, "once")
    assert not [line for line in server.output.tail() if "connected at" in line], server.output.tail()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(QUESTION)
        assert CTIME.match(recv_line(sock))
    info = wait_state(manager, "once", "EXITED")
    assert info["exit_class"] == "finished", info
    connected = [line for line in server.output.tail() if "connected at" in line]
    assert len(connected) == 1, "we were its one client"


def test_a_student_server_that_never_listens_is_fatal_with_the_reason(manager_factory):
    never = os.path.join(SOLUTIONS, "never_listens.py")
    manager, _ = manager_factory(serve=[{"file": never, "exercise": "clock"}], start_timeout=0.5)
    manager.start("never_listens")
    info = wait_state(manager, "never_listens", "FATAL")
    assert "nothing in its tree listens on port" in info["reason"], info["reason"]


def test_without_cgroups_the_process_cap_is_rlimit_nproc_and_root_is_told_it_has_none(manager_factory):
    manager, _ = manager_factory(serve=[{"file": SECRET, "name": "team3"}], cgroups="off")
    said = [e["text"] for e in manager.history.after(0) if e["kind"] == "info" and e["server"] == "team3"]
    if os.getuid() == 0:
        assert manager.servers["team3"].limits()["process_cap"] is None
        assert said == [
            "team3 will run with no cap on its processes: forkwatch runs as root without cgroups, "
            "and the kernel never applies RLIMIT_NPROC to root"
        ]
    else:
        assert manager.servers["team3"].limits()["process_cap"] == "RLIMIT_NPROC" and said == []
