"""One definition per metric name: the tables, the report's cards and the README agree."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from conduit_notebook import cost_breakdown, errors_frame, runs_frame, summarize, tool_calls_frame, tool_stats
from conduit_notebook.demo import DemoData
from conduit_notebook.metrics import FORMATS, GLOSSARY, cost_per_run, failure_rate, format_metric
from conduit_notebook.report import html_report

from .analysis_data import frames

END = pd.Timestamp("2026-11-20T12:00:00Z").to_pydatetime()


@pytest.fixture(scope="module")
def demo():
    data = DemoData(runs=900, agents=3, seed=5, end=END)
    records = data.records()
    names = {a["id"]: a["name"] for a in data.agents}
    return runs_frame(records, agent_names=names), tool_calls_frame(records)


def test_cost_per_run_and_failure_rate_mean_one_thing(demo):
    runs, _ = demo
    assert runs["total_cost"].isna().any() and (runs["status"] == "running").any()  # the cases that differed
    for by in (None, "agent_name"):
        mean = summarize(runs, by=by)
        costs = cost_breakdown(runs, by=by).reindex(mean.index)
        assert costs["cost_per_run"].to_numpy() == pytest.approx(mean["cost_per_run"].to_numpy())
    with_cost = runs["total_cost"].notna()
    assert summarize(runs)["cost_per_run"].iloc[0] == pytest.approx(runs.loc[with_cost, "total_cost"].mean())
    finished = runs["status"].isin(["completed", "failed"])
    assert summarize(runs)["failure_rate"].iloc[0] == pytest.approx(
        (runs["status"] == "failed").sum() / finished.sum())


def test_the_functions_leave_missing_missing():
    assert failure_rate(3, 60) == pytest.approx(0.05)
    assert np.isnan(failure_rate(0, 0)) and np.isnan(cost_per_run(0.0, 0))
    assert list(np.isnan(cost_per_run([1.0, 0.0], [2, 0]))) == [False, True]
    assert format_metric("failure_rate", 0.05) == "5.0%" and format_metric("runs", 3.0) == "3"
    assert format_metric("cost_per_run", float("nan")) == "–"


def test_every_table_column_is_in_the_glossary_and_the_readme(demo):
    runs, calls = demo
    names = set(summarize(runs).columns) | set(cost_breakdown(runs).columns)
    assert names <= set(GLOSSARY) and set(GLOSSARY) == set(FORMATS)
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    glossary = readme.split("## Glossary", 1)[1].split("\n## ", 1)[0]
    for name in GLOSSARY:
        assert re.search(rf"^\| `{name}` \|", glossary, re.M), name
    # tool_stats' per-tool costs use the same definition: mean over runs with a cost.
    table = tool_stats(calls, runs)
    tool = table.index[0]
    using = runs["id"].isin(calls.loc[calls["name"] == tool, "agent_run_id"].astype(object))
    assert table.loc[tool, "cost_per_run_with"] == pytest.approx(runs.loc[using, "total_cost"].mean())


def _report(runs, calls):
    frames = SimpleNamespace(runs=runs, tool_calls=calls, errors=errors_frame([]), source="test")
    return html_report(frames)


def _cards(text):
    return dict(re.findall(r"<div class='card'>([^<]+)<b>([^<]+)</b>", text))


def _ids_after(text, heading):
    table = re.split(r"<h[23]", text.split(f">{heading}</h3>", 1)[1], maxsplit=1)[0]
    return re.findall(r"<td>(ar\w+)</td>", table)


def test_report_cards_tables_and_most_expensive_agree(demo):
    runs, calls = demo
    text = _report(runs, calls)
    cards = _cards(text)
    total = summarize(runs).iloc[0]
    assert cards["failure rate"] == format_metric("failure_rate", total["failure_rate"])
    assert cards["cost per run"] == format_metric("cost_per_run", total["cost_per_run"])
    assert "failed" not in cards  # the old card counted every run, finished or not
    # The Dispositions table has no failure rate (failed runs have no disposition: always 0%).
    dispositions = text.split("id='dispositions'", 1)[1].split("<h2", 1)[0]
    assert "failure_rate" not in dispositions
    assert _ids_after(text, "Most expensive") == list(runs.nlargest(8, "total_cost")["id"])
    assert _ids_after(text, "Slowest") == list(runs.nlargest(8, "duration_ms")["id"])


def test_small_frames_by_hand():
    runs, _ = frames()
    table = cost_breakdown(runs, by="agent_name")
    assert table.loc["Alpha", "cost_per_run"] == pytest.approx(0.07 / 3)  # the failed run has no cost
