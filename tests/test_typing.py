"""The package is typed: it ships ``py.typed`` (PEP 561) and mypy, configured in pyproject.toml,
finds nothing in it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_package_ships_py_typed():
    assert (ROOT / "conduit_notebook" / "py.typed").is_file()
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '[tool.setuptools.package-data]\nconduit_notebook = ["py.typed"]' in pyproject  # installed with it


def test_mypy_finds_nothing(tmp_path):
    # The [tool.mypy] section of pyproject.toml says what is checked and how strictly.
    done = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path), "--no-color-output"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("Success: no issues found")
