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


def test_only_the_built_in_demo_server_goes_unpaced(monkeypatch, capsys):
    # The built-in server has no rate limit: pacing against it would only sleep. A real
    # workspace (a token is set) keeps the API's pace unless --rpm says otherwise.
    from conduit_notebook import cli, client, demo

    paces = []

    class Recording(client.ConduitClient):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            paces.append(self.limiter.limit)

    monkeypatch.setattr(client, "ConduitClient", Recording)
    monkeypatch.delenv(client.TOKEN_ENV, raising=False)
    assert cli.main(["summary", "--demo", "--runs", "200"]) == 0
    with demo.serve(runs=200, agents=1) as server:
        monkeypatch.setenv(client.TOKEN_ENV, server.token)
        monkeypatch.setenv("CONDUIT_BASE_URL", server.base_url)
        assert cli.main(["summary", "--no-cache"]) == 0
        assert cli.main(["summary", "--no-cache", "--rpm", "600"]) == 0
    capsys.readouterr()
    assert paces == [demo.DEMO_REQUESTS_PER_MINUTE, 120, 600]


def test_sync_follow_fills_traces_a_budget_per_pass(monkeypatch, capsys):
    import re

    from conduit_notebook import cli, client

    monkeypatch.delenv(client.TOKEN_ENV, raising=False)
    assert cli.main(["sync", "--demo", "--runs", "400", "--follow", "--passes", "3", "--per-pass", "60",
                     "--interval", "0"]) == 0
    passes = re.findall(r"pass (\d): 400 runs, ([\d,]+) with traces, [\d,]+ requests \(([\d,]+) trace\)",
                        capsys.readouterr().err)
    assert [p[0] for p in passes] == ["1", "2", "3"]
    traced = [int(p[1]) for p in passes]
    fetched = [int(p[2]) for p in passes]
    assert 60 <= traced[0] < traced[1] < traced[2] < 400  # a stratified sample growing by a budget a pass
    assert fetched[0] == traced[0] and fetched[1] == traced[1] - traced[0] <= 60 + 40


def test_serve_demo_and_report_options_are_checked(capsys):
    from conduit_notebook import cli

    parser = cli.build_parser()
    args = parser.parse_args(["serve-demo", "--runs-per-day", "5000", "--days", "14"])
    assert (args.runs_per_day, args.days) == (5000, 14)
    assert parser.parse_args(["report", "--traces", "300"]).traces == 300
    assert parser.parse_args(["report"]).traces == "auto"
    assert parser.parse_args(["sync"]).traces is True
    with __import__("pytest").raises(SystemExit):
        parser.parse_args(["report", "--traces", "some"])
    assert "expected auto, all, none or a whole number" in capsys.readouterr().err
