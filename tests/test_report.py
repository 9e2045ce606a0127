"""The report command, run as a user runs it: a subprocess on the demo server."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from datetime import timedelta

import pytest

from conduit_notebook.report import OPTIONAL_SECTIONS, REPORT_SECTIONS

from .conftest import DEMO_END


def run_cli(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "conduit_notebook.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


@pytest.fixture
def env(monkeypatch, tmp_path):
    import os

    environment = dict(os.environ)
    environment.pop("CONDUIT_API_TOKEN", None)
    environment["CONDUIT_NOTEBOOK_CACHE"] = str(tmp_path / "cache.sqlite")
    return environment


def test_report_on_the_demo_server_has_every_section_and_its_images(tmp_path, env):
    out = tmp_path / "report.html"
    reviews = tmp_path / "reviews.csv"  # verdicts on runs of another workspace: left out, and said so
    reviews.write_text("agent_run_id,agent_id,disposition,verdict,reviewed_disposition,note,reviewer,reviewed_at\r\n"
                       "arelsewhere,ag1,resolved,correct,resolved,,ana,2026-11-01T10:00:00+00:00\r\n")
    result = run_cli("report", "--demo", "--runs", "800", "--since", "10d", "--out", str(out),
                     "--reviews", str(reviews), env=env)
    assert result.returncode == 0, result.stderr
    assert "Demo server at http://127.0.0.1:" in result.stderr and f"Wrote {out}" in result.stderr
    assert result.stdout == ""  # progress and messages go to stderr
    text = out.read_text()
    for section in (*REPORT_SECTIONS, *OPTIONAL_SECTIONS):
        assert f">{section}</h2>" in text, section
    assert "Conduit&#x27;s operators" in text or "Conduit's operators" in text
    assert "1 verdict(s) on runs outside this report" in text
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", text)
    # cost x2, dispositions, duration x2, tokens x2, tools; changes, compare, tool paths; after the runs
    assert len(images) == 12
    assert all(base64.b64decode(i)[:4] == b"\x89PNG" for i in images)
    assert "cost per resolved run" in text and "get_reservation" in text
    assert "check_availability" in text.split("id='repeated-calls'")[1]  # the demo's planted repeat
    assert "conversations<b>" in text
    after = text.split("id='after-the-runs'")[1].split("<h2")[0]
    assert "came_back_escalated_rate" in after and "dismissed_rate" in after and "(all)" in after
    assert "http" not in re.sub(r"source http://127\.0\.0\.1:\d+", "", text).split("<style>")[0]  # self-contained
    runs = int(re.search(r"runs<b>([\d,]+)</b>", text).group(1).replace(",", ""))
    assert 150 < runs < 800


def test_without_a_token_the_report_exits_3_and_writes_nothing(tmp_path, env):
    result = run_cli("report", "--runs", "300", "--agents", "Billing", "--out", str(tmp_path / "r.html"), env=env)
    assert result.returncode == 3, result.stderr
    assert "CONDUIT_API_TOKEN is not set" in result.stderr and "--demo" in result.stderr
    assert not (tmp_path / "r.html").exists()
    result = run_cli("report", "--demo", "--runs", "300", "--agents", "Billing", "--out", str(tmp_path / "r.html"),
                     env=env)
    assert result.returncode == 0, result.stderr
    assert "Billing" in (tmp_path / "r.html").read_text()


@pytest.mark.parametrize("args, message", [
    (["report", "--since", "lastweek"], "--since must be"),
    (["report", "--reviews", "no-such-reviews.csv"], "--reviews must be a review store"),
    (["report", "--rpm", "0"], "--rpm"),
    (["report", "--runs", "many"], "--runs"),
    (["cache"], "ACTION"),
    (["explode"], "invalid choice"),
])
def test_bad_arguments_exit_2(args, message, env):
    result = run_cli(*args, env=env)
    assert result.returncode == 2
    assert message in result.stderr


def test_unknown_agent_is_an_error_naming_it(tmp_path, env):
    result = run_cli("report", "--demo", "--runs", "200", "--agents", "Spa", "--out", str(tmp_path / "r.html"), env=env)
    assert result.returncode == 2 and "'Spa'" in result.stderr and "--agents" in result.stderr


def test_authentication_failure_exits_3(env):
    env = {**env, "CONDUIT_API_TOKEN": "wrong", "CONDUIT_BASE_URL": "http://127.0.0.1:9"}
    from conduit_notebook import demo

    with demo.serve(runs=10, end=DEMO_END) as server:
        env["CONDUIT_BASE_URL"] = server.base_url
        result = run_cli("summary", env=env)
    assert result.returncode == 3 and "CONDUIT_API_TOKEN" in result.stderr and "wrong" not in result.stderr


def test_sync_fills_the_cache_and_cache_info_shows_it(env):
    from conduit_notebook import demo

    with demo.serve(runs=300, agents=2, end=DEMO_END) as server:
        env = {**env, "CONDUIT_API_TOKEN": server.token, "CONDUIT_BASE_URL": server.base_url}
        since = (DEMO_END - timedelta(days=10)).isoformat()  # the subprocess keeps the real clock
        first = run_cli("sync", "--since", since, "--rpm", "6000", env=env)
        assert first.returncode == 0, first.stderr
        assert "RunFrames" in first.stdout
        again = run_cli("sync", "--since", since, "--rpm", "6000", env=env)
        assert "cache hits" in again.stdout
        assert re.search(r"requests\s+3 \(3 list, 0 trace", again.stdout), again.stdout
    info = run_cli("cache", "info", env=env)
    assert info.returncode == 0 and server.base_url in info.stdout
    cleared = run_cli("cache", "clear", env=env)
    assert cleared.returncode == 0 and re.search(r"Removed \d+ cached runs", cleared.stdout)


def test_partial_fetch_exits_4(tmp_path, env):
    from conduit_notebook import demo

    with demo.serve(runs=200, agents=1, end=DEMO_END) as server:
        agent = server.data.agents[0]["id"]
        run_id = server.data.summary(int(server.data.agent_rows(agent)[4]))["id"]
        server.inject(500, times=-1, match=run_id)
        env = {**env, "CONDUIT_API_TOKEN": server.token, "CONDUIT_BASE_URL": server.base_url}
        since = (DEMO_END - timedelta(days=7)).isoformat()  # the subprocess keeps the real clock
        result = run_cli("report", "--since", since, "--rpm", "6000", "--no-cache", "--out", str(tmp_path / "r.html"),
                         env=env)
    assert result.returncode == 4, result.stderr
    assert "partial: 1 run(s)" in result.stderr
    assert run_id in (tmp_path / "r.html").read_text()


def test_report_shows_escalations_and_a_weighted_review(server, client, tmp_path):
    from conduit_notebook import ReviewStore, fetch_escalations, fetch_runs, review_sample
    from conduit_notebook.report import html_report

    frames = fetch_runs(client=client, cache=False, progress=False)
    escalations = fetch_escalations(client=client)
    store = ReviewStore(tmp_path / "reviews.csv")
    sample = review_sample(frames.runs, n=24, seed=0)
    for k, (_, run) in enumerate(sample.iterrows()):
        for reviewer in ("ana", "ben")[: 1 + (k < 8)]:
            wrong = k % 4 == 1 or (reviewer == "ben" and k == 2)
            store.add(agent_run_id=run["id"], agent_id=run["agent_id"], disposition=run["disposition"],
                      verdict="wrong" if wrong else "correct",
                      reviewed_disposition=("handed_off" if run["disposition"] != "handed_off" else "resolved")
                      if wrong else None, reviewer=reviewer)
    text = html_report(frames, escalations=escalations, reviews=store.load())
    assert ">Escalations</h2>" in text and ">Disposition review</h2>" in text
    assert "weighted back to the" in text and "Cohen&#x27;s kappa" in text or "Cohen's kappa" in text
    assert "dismissed %" in text and "reviewers&#x27; verdict against the operator" in text or \
        "reviewers' verdict against the operator" in text
    (tmp_path / "report.html").write_text(text)
