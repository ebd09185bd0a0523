"""GET /source/servers/NAME.py: the lecture programs' text for the code pane, and nothing else
(no other folder, no other extension, no symlink, no path trick)."""

import os

import pytest

from servers import forking_clock
from supervisor.core.process import CommandError
from supervisor.web.source import lecture_files, read_source


def test_a_lecture_program_is_served_as_plain_text(client):
    response = client.get("/source/servers/forking_clock.py")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    with open(forking_clock.__file__, encoding="utf-8") as handle:
        assert response.get_data(as_text=True) == handle.read()
    assert "time.sleep(delay)" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "path",
    [
        "/source/servers/../supervisor/web/auth.py",
        "/source/servers/..%2Fsupervisor%2Fweb%2Fauth.py",
        "/source/servers/%2E%2E%2Fpyproject.toml",
        "/source/servers/%2e%2e",
        "/source/servers/forking_clock.pyc",
        "/source/servers/forking_clock",
        "/source/servers/forking_clock.py%00.txt",
        "/source/servers/__pycache__",
        "/source/servers//etc/passwd",
        "/source/supervisor/web/auth.py",
        "/source/servers/FORKING_CLOCK.PY",
    ],
)
def test_nothing_else_is_served(client, path):
    response = client.get(path)
    assert response.status_code == 404, path
    text = response.get_data(as_text=True)
    assert "import" not in text and "root:" not in text


def test_only_regular_python_files_directly_in_the_folder(tmp_path):
    (tmp_path / "lesson.py").write_text("print('hello')\n")
    (tmp_path / "notes.txt").write_text("not a program\n")
    (tmp_path / "package").mkdir()
    (tmp_path / "package" / "inner.py").write_text("x = 1\n")
    os.symlink("/etc/passwd", tmp_path / "passwd.py")
    os.symlink(tmp_path / "lesson.py", tmp_path / "alias.py")
    assert lecture_files(str(tmp_path)) == {"lesson.py": str(tmp_path / "lesson.py")}
    assert read_source("lesson.py", str(tmp_path)) == "print('hello')\n"
    for name in ("passwd.py", "alias.py", "notes.txt", "package", "inner.py", "../lesson.py"):
        with pytest.raises(CommandError) as refused:
            read_source(name, str(tmp_path))
        assert refused.value.status == 404, name


def test_bytes_that_are_not_utf8_are_shown_replaced(tmp_path):
    (tmp_path / "latin.py").write_bytes(b"# caf\xe9\n")
    assert read_source("latin.py", str(tmp_path)) == "# caf\ufffd\n"
