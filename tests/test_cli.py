"""The command line, run as a user would: a subprocess."""

from __future__ import annotations

import subprocess
import sys


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "conduit_notebook.cli", *args],
        capture_output=True, text=True, timeout=timeout,
    )


def test_summary_on_the_demo_server():
    result = run_cli("summary", "--demo", "--runs", "600", "--seed", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("600 runs from ")
    table = "\n".join(lines[1:])
    for name in ("Reservations", "Check-in", "Billing", "(all agents)"):
        assert name in table
    total = next(line for line in lines if line.startswith("(all agents)"))
    assert total.split()[2] == "600"
    assert "Demo server at http://127.0.0.1:" in result.stderr


def test_bad_arguments_exit_2_with_a_message():
    result = run_cli("summary", "--runs", "zero")
    assert result.returncode == 2
    assert "--runs" in result.stderr and "expected a whole number" in result.stderr
    assert run_cli("nonsense").returncode == 2
