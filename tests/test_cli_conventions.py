"""The command line's conventions (issue 21, items 8, 9, 12): --version, python -m, --quiet,
warnings as one line of its own voice, summary --format csv|json, and a request count that
counts every request."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys

import pandas as pd
import pytest

from conduit_notebook import ConduitClient, __version__, demo, fetch_runs
from conduit_notebook.cli import main
from conduit_notebook.report import summary_table

from .conftest import DEMO_END


def run_module(*args: str, env_token: bool = False) -> subprocess.CompletedProcess:
    import os

    env = {k: v for k, v in os.environ.items() if k != "CONDUIT_API_TOKEN"}
    return subprocess.run([sys.executable, "-m", "conduit_notebook", *args], capture_output=True, text=True,
                          timeout=180, env=env)


def test_version_and_python_dash_m():
    result = run_module("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"conduit-notebook {__version__}"


def test_an_explicit_sample_warns_in_one_line_and_quiet_says_nothing(tmp_path):
    out = tmp_path / "r.html"
    loud = run_module("report", "--demo", "--runs", "300", "--traces", "5", "--out", str(out))
    assert loud.returncode == 0, loud.stderr
    warning = [line for line in loud.stderr.splitlines() if "fewer than the" in line]
    assert len(warning) == 1 and warning[0].startswith("conduit-notebook: warning: details=5 is 5 traces")
    assert "UserWarning" not in loud.stderr and "warnings.warn" not in loud.stderr and ".py:" not in loud.stderr
    assert "(a stratified sample: 5 asked for, at least one per stratum)" in loud.stderr
    assert "within the budget" not in loud.stderr
    out.unlink()
    quiet = run_module("report", "--demo", "--quiet", "--runs", "300", "--traces", "5", "--out", str(out))
    assert quiet.returncode == 0 and quiet.stderr == "" and out.stat().st_size > 10_000
    assert run_module("-q", "summary", "--demo", "--runs", "100").stderr == ""


@pytest.fixture
def workspace(monkeypatch):
    with demo.serve(runs=300, agents=2, seed=6, end=DEMO_END) as server:
        monkeypatch.setenv("CONDUIT_API_TOKEN", server.token)
        monkeypatch.setenv("CONDUIT_BASE_URL", server.base_url)
        yield server


@pytest.mark.parametrize("form", ["csv", "json"])
def test_summary_for_programs(workspace, capsys, form):
    assert main(["summary", "--format", form, "--no-cache", "--rpm", "60000"]) == 0
    text = capsys.readouterr().out
    table = pd.read_csv(io.StringIO(text)) if form == "csv" else pd.DataFrame(json.loads(text))
    with ConduitClient(workspace.token, base_url=workspace.base_url, requests_per_minute=60_000) as client:
        expected = summary_table(fetch_runs(client=client, details=False, cache=False).runs)
    assert list(table.columns) == ["agent", *expected.columns]
    assert list(table["agent"]) == [str(a) for a in expected.index]
    assert table.set_index("agent").loc["(all agents)", "runs"] == workspace.data.n == 300
    for column in ("runs", "failed", "tokens", "cost USD", "p50 s"):
        assert table[column].to_numpy() == pytest.approx(expected[column].to_numpy(dtype=float))


def test_report_counts_every_request_it_made(workspace, capsys, tmp_path):
    assert main(["report", "--no-cache", "--rpm", "60000", "--since", "2026-10-01",
                 "--out", str(tmp_path / "r.html")]) == 0
    made = len(workspace.requests)
    escalations = sum(1 for r in workspace.requests if "escalation" in r.path)
    said = re.search(r"Wrote .* ([\d,]+) requests", capsys.readouterr().err)
    assert escalations > 0 and int(said.group(1).replace(",", "")) == made
