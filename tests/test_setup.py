"""Setting up: the Makefile refuses a Python that is too old in one line and makes again a
.venv that another Python made; pyproject's licence is an SPDX expression."""

import shutil
import subprocess
import sys
import tomllib

from tests.helpers import ROOT

FAKE_PYTHON_310 = """#!/bin/sh
# answers as Python 3.10 would to what the Makefile asks
case "$1" in
  -V) echo "Python 3.10.13" ;;
  -c) case "$2" in *exit*) exit 1 ;; *) echo 3.10 ;; esac ;;
  *) exit 1 ;;
esac
"""


def fake_python(folder):
    path = folder / "python3.10"
    path.write_text(FAKE_PYTHON_310)
    path.chmod(0o755)
    return path


def make(folder, *args):
    return subprocess.run(["make", "-C", str(folder), *args], capture_output=True, text=True, timeout=60)


def test_make_says_in_one_line_which_python_it_needs(tmp_path):
    done = make(ROOT, "python", f"PYTHON={fake_python(tmp_path)}")
    assert done.returncode != 0
    said = [line for line in done.stderr.splitlines() if not line.startswith("make")]
    assert said == [
        f"forkwatch needs Python 3.11 or newer, and {tmp_path}/python3.10 is Python 3.10.13: "
        "run make PYTHON=python3.11 (or a newer python3.X)"
    ]


def test_make_makes_again_a_venv_that_another_python_made(tmp_path):
    shutil.copy(f"{ROOT}/Makefile", tmp_path)
    shutil.copy(f"{ROOT}/pyproject.toml", tmp_path)
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    shutil.copy(fake_python(tmp_path), tmp_path / ".venv" / "bin" / "python")
    (tmp_path / ".venv" / ".installed").touch()  # even one that looks installed
    planned = make(tmp_path, "-n", ".venv/.installed", f"PYTHON={sys.executable}").stdout
    assert (
        f".venv was made by Python 3.10, not by {sys.executable} (Python {sys.version_info[0]}.{sys.version_info[1]})"
        in planned
    )
    assert "rm -rf .venv" in planned and f"{sys.executable} -m venv .venv" in planned


def test_make_keeps_a_venv_of_the_right_python(tmp_path):
    shutil.copy(f"{ROOT}/Makefile", tmp_path)
    shutil.copy(f"{ROOT}/pyproject.toml", tmp_path)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / ".venv")], check=True)
    (tmp_path / ".venv" / ".installed").touch()
    planned = make(tmp_path, "-n", ".venv/.installed", f"PYTHON={sys.executable}").stdout
    assert "rm -rf" not in planned and "-m venv" not in planned


def test_the_licence_is_an_spdx_expression():
    with open(f"{ROOT}/pyproject.toml", "rb") as handle:
        pyproject = tomllib.load(handle)
    assert pyproject["project"]["license"] == "MIT"  # a table form is deprecated by setuptools
    assert pyproject["build-system"]["requires"] == ["setuptools>=77"]  # the first to read it
