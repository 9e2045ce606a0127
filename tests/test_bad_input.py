"""Bad input meets a clear error naming the parameter, never a traceback or a silent wrong
answer (issue 23, items 11 and 12, and the minor ones: wilson_interval, filter_runs)."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from conduit_notebook import ConduitClient, demo, fetch_runs, filter_runs, wilson_interval
from conduit_notebook.escalations import escalation_summary
from conduit_notebook.investigate import metric_levels
from conduit_notebook.report import html_report
from conduit_notebook.times import parse_time

from .conftest import DEMO_END


@pytest.mark.parametrize("value", ["2999-01-01", "1500-01-01", datetime(2999, 1, 1), "2500-06-01T00:00:00Z"])
def test_a_time_outside_what_pandas_holds_is_a_clear_error(value, client):
    with pytest.raises(ValueError, match=r"since must be between 1677-09-21 and 2262-04-11"):
        parse_time(value, "since")
    with pytest.raises(ValueError, match=r"until must be between"):
        fetch_runs(client=client, until=value, cache=False)
    runs = pd.DataFrame({"created_at": pd.to_datetime(["2026-11-01"], utc=True)})
    with pytest.raises(ValueError, match=r"since must be between"):
        filter_runs(runs, since=value)


def _cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "conduit_notebook.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("since", ["2999-01-01", "1500-01-01"])
def test_the_cli_refuses_a_date_out_of_range_with_exit_2(since):
    done = _cli("summary", "--demo", "--runs", "20", "--since", since)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--since must be between 1677-09-21 and 2262-04-11" in done.stderr


def test_a_report_that_cannot_be_written_exits_1_with_a_message():
    done = _cli("report", "--demo", "--runs", "60", "--traces", "none", "--out", "/dev/full")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "/dev/full" in done.stderr and "No space left on device" in done.stderr


def test_wilson_interval_refuses_more_successes_than_trials():
    with pytest.raises(ValueError, match=r"successes \(5\) must be between 0 and trials \(3\)"):
        wilson_interval(5, 3)
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(-1, 3)
    assert all(np.isnan(wilson_interval(0, 0)))
    low, high = wilson_interval(3, 3)
    assert high == pytest.approx(1.0) and 0 < low < 1


def test_filter_runs_refuses_a_since_after_the_until():
    runs = pd.DataFrame({"created_at": pd.to_datetime(["2026-11-01", "2026-11-05"], utc=True)})
    with pytest.raises(ValueError, match=r"since \(2026-11-10.*\) is after until \(2026-11-02"):
        filter_runs(runs, since="2026-11-10", until="2026-11-02")
    assert len(filter_runs(runs, since="2026-11-01", until="2026-11-01")) == 1  # one whole day


# -- item 12: the report and the tables ---------------------------------------------------------

def _records():
    data = demo.DemoData(runs=120, agents=2, seed=3, end=DEMO_END)
    return data.agents, data.records()


def _frames_of(agents, records):
    with demo.serve_records(agents, records) as server:
        with ConduitClient(server.token, base_url=server.base_url, requests_per_minute=60_000) as c:
            return fetch_runs(client=c, cache=False, progress=False)


def test_a_cost_of_infinity_is_an_error_row_and_the_report_draws(server):
    agents, records = _records()
    body = json.dumps(records[5]).replace(json.dumps(records[5]["total_cost"]), "Infinity", 1)
    assert "Infinity" in body
    records[5] = json.loads(body)  # as the API would send it (Python's json reads Infinity)
    frames = _frames_of(agents, records)
    assert records[5]["id"] in set(frames.errors["agent_run_id"])
    assert "total_cost is inf" in frames.errors["error"].iloc[0]
    assert np.isfinite(frames.runs["total_cost"].dropna()).all() and len(frames.runs) == 119
    # A frame with an infinite cost made by hand still gives a report (no axis-limit error).
    frames.runs.loc[0, "total_cost"] = np.inf
    page = html_report(frames)
    assert "<h2 id='cost'>" in page and "1 infinite total_cost" in page


def test_a_report_when_no_created_at_can_be_read(server):
    agents, records = _records()
    for r in records:
        r["created_at"] = "yesterday-ish"
    frames = _frames_of(agents, records)
    assert len(frames.runs) == 120 and frames.runs["created_at"].isna().all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        page = html_report(frames)
    assert "No run has a readable created_at" in page


def test_the_wrong_table_gets_a_clear_error(client):
    frames = fetch_runs(client=client, cache=False, progress=False)
    with pytest.raises(ValueError, match=r"metric_levels takes the runs table .*tool-call table"):
        metric_levels(frames.tool_calls)
    with pytest.raises(ValueError, match=r"escalations must be the frame from fetch_escalations\(\).*runs table"):
        escalation_summary(frames.runs)
    with pytest.raises(ValueError, match=r"escalation_summary: runs .* tool-call table"):
        escalation_summary(pd.DataFrame({"id": [], "agent_run_id": [], "status": [], "created_at": [],
                                         "reviewed_at": []}), frames.tool_calls)


def test_a_misspelt_by_names_the_column_not_another_table(server, client):
    # Issue 21 item 8: summarize(runs, by="agent") said "pass the runs frame" to a runs frame.
    from conduit_notebook import summarize
    runs = fetch_runs(client=client, since="7d", details=False, progress=False).runs
    with pytest.raises(ValueError, match=r"summarize needs the column agent, which this runs frame lacks; its columns include id, "):
        summarize(runs, by="agent")


def test_change_points_of_no_runs_is_empty_and_silent(server, client):
    # Issue 21 item 8: an empty frame gave numpy's RuntimeWarning (0/0) before an empty table.
    import warnings

    from conduit_notebook import change_points
    runs = fetch_runs(client=client, since="7d", details=False, progress=False).runs.iloc[:0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = change_points(runs, metric="escalation_rate")
    assert len(out) == 0 and list(out.columns) == ["at", "before", "after", "change", "kind"]
