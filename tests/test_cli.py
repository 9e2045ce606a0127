"""The command line, run as a user would: a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conduit_notebook import demo
from conduit_notebook.cli import main

from .conftest import DEMO_END


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
    from conduit_notebook import (
        cli,
        client,
        demo,
        fetch,  # noqa: F401 - imported before the patch, so it keeps the real class
    )

    paces = []

    class Recording(client.ConduitClient):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            paces.append(self.limiter.limit)

    monkeypatch.setattr(client, "ConduitClient", Recording)
    monkeypatch.delenv(client.TOKEN_ENV, raising=False)
    assert cli.main(["summary", "--demo", "--runs", "200"]) == 0
    with demo.serve(runs=200, agents=1, end=DEMO_END) as server:
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


def test_import_and_help_load_no_heavy_module():
    # PEP 562 lazy names: the command line and a bare import start without pandas, pyplot or
    # ipywidgets (`--help` took 3.4 s when they were imported eagerly).
    code = ("import sys, contextlib, io\n"
            "import conduit_notebook\n"
            "from conduit_notebook import cli\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "    cli.main(['--help'])\n"
            "heavy = [m for m in ('pandas', 'matplotlib.pyplot', 'ipywidgets', 'numpy') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "conduit_notebook.summarize\n"
            "assert 'pandas' in sys.modules and 'matplotlib.pyplot' not in sys.modules\n"
            "import pandas\n"
            "assert hasattr(pandas.DataFrame, 'conduit')\n"
            "conduit_notebook.plot_cost\n"
            "assert 'matplotlib.pyplot' in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def workspace(monkeypatch):
    """A demo workspace ending at a fixed moment, reached with a token as a real one is."""
    with demo.serve(runs=400, agents=2, seed=7, end=DEMO_END) as server:
        monkeypatch.setenv("CONDUIT_API_TOKEN", server.token)
        monkeypatch.delenv("CONDUIT_BASE_URL", raising=False)
        yield server


def _summary_runs(out: str) -> int:
    return int(out.splitlines()[0].split()[0].replace(",", ""))


def test_until_and_base_url_take_a_whole_day(workspace, capsys):
    code = main(["summary", "--base-url", workspace.base_url, "--since", "2026-11-18", "--until", "2026-11-18",
                 "--rpm", "60000", "--no-cache"])
    out = capsys.readouterr().out
    day = [r for r in workspace.data.summaries() if r["created_at"].startswith("2026-11-18")]
    assert code == 0 and len(day) > 5
    assert _summary_runs(out) == len(day)


@pytest.mark.parametrize("args, message", [
    (["report", "--since", "99999999999d"], "--since must be"),
    (["report", "--until", "someday"], "--until must be"),
    (["summary", "--since", "2026-11-19", "--until", "2026-11-18"], "is after --until"),
    (["report", "--out", "/missing/dir/r.html"], "--out: the folder /missing/dir does not exist"),
    (["summary", "--base-url", "ftp://x"], "--base-url must be an http(s) URL"),
    (["summary", "--demo", "--base-url", "http://127.0.0.1:9"], "do not go together"),
    (["summary", "--agents", "Spa"], "--agents: No agent with the id or name 'Spa'"),
])
def test_arguments_are_checked_before_the_first_request(workspace, capsys, args, message):
    code = main([*args, "--base-url", workspace.base_url] if "--base-url" not in args and "--demo" not in args
                else args)
    assert code == 2
    assert message in capsys.readouterr().err
    # Only the agent list can tell that an agent does not exist; nothing else asks the API.
    assert workspace.count() == (1 if "--agents" in args else 0)


def test_out_that_cannot_be_written_fails_before_the_fetch(workspace, capsys, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    # Root may write anywhere it has permission bits for, but not into /proc.
    target = Path("/proc/r.html") if os.geteuid() == 0 else locked / "r.html"
    try:
        code = main(["report", "--base-url", workspace.base_url, "--out", str(target)])
    finally:
        locked.chmod(0o700)
    assert code == 2 and "cannot be written" in capsys.readouterr().err
    assert workspace.count() == 0


@pytest.mark.parametrize("token", [None, "  "])  # a blank token is no token
@pytest.mark.parametrize("command", [["summary"], ["report"], ["sync"], ["sync", "--follow", "--passes", "1"]])
def test_no_token_and_no_demo_exits_3_and_names_both(monkeypatch, capsys, tmp_path, token, command):
    # A nightly report whose environment lost its token must not publish demo numbers.
    monkeypatch.chdir(tmp_path)
    if token is None:
        monkeypatch.delenv("CONDUIT_API_TOKEN", raising=False)
    else:
        monkeypatch.setenv("CONDUIT_API_TOKEN", token)
    assert main([*command, "--runs", "150", "--agent-count", "1"]) == 3
    captured = capsys.readouterr()
    assert "CONDUIT_API_TOKEN" in captured.err and "--demo" in captured.err
    assert "Demo server" not in captured.err and captured.out == ""
    assert list(tmp_path.iterdir()) == []  # no report.html


def test_cache_clear_of_an_unknown_source_says_so(capsys):
    assert main(["cache", "clear", "--source", "nope"]) == 2
    assert "holds nothing from 'nope'" in capsys.readouterr().err


def test_serve_demo_port_out_of_range_or_taken(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve-demo", "--port", "70000"])
    assert exit_info.value.code == 2 and "from 0 to 65535" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve-demo", "--port", str(port), "--runs", "10"]) == 2
    assert f"--port {port}: cannot listen" in capsys.readouterr().err
