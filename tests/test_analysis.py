"""The analysis functions against hand computations on small frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conduit_notebook import (
    cost_breakdown,
    outliers,
    review_sample,
    runs_frame,
    summarize,
    tool_stats,
)
from conduit_notebook.analysis import SUMMARY_COLUMNS
from conduit_notebook.demo import DemoData

from .analysis_data import frames, run
from .conftest import DEMO_END


@pytest.fixture
def runs():
    return frames()[0]


@pytest.fixture
def calls():
    return frames()[1]


def test_summarize_by_agent_by_hand(runs):
    table = summarize(runs, by="agent_name")
    assert list(table.columns) == SUMMARY_COLUMNS
    alpha, beta = table.loc["Alpha"], table.loc["Beta"]
    assert alpha["runs"] == 4 and beta["runs"] == 2
    assert alpha["share"] == pytest.approx(4 / 6)
    assert alpha["failure_rate"] == pytest.approx(1 / 4)  # 1 failed of 4 finished
    assert beta["failure_rate"] == 0.0  # the running run is not finished
    # Durations 1, 2, 4, 30 s: numpy's linear interpolation.
    assert alpha["p50_duration_s"] == pytest.approx(np.percentile([1, 2, 4, 30], 50))
    assert alpha["p90_duration_s"] == pytest.approx(np.percentile([1, 2, 4, 30], 90))
    assert beta["p50_duration_s"] == 3.0  # the running run has no duration yet
    assert alpha["input_tokens"] == 700 and alpha["output_tokens"] == 70 and alpha["total_tokens"] == 770
    assert alpha["tokens_per_run"] == pytest.approx(770 / 3)  # the failed run has no usage: not a 0
    assert alpha["total_cost"] == pytest.approx(0.07)
    assert alpha["cost_per_run"] == pytest.approx(0.07 / 3)
    assert beta["cost_per_run"] == pytest.approx(0.09)


def test_groups_add_up_to_the_total(runs):
    total = summarize(runs)
    assert list(total.index) == ["all"]
    for by in ("agent_name", "disposition", ["agent_name", "status"]):
        parts = summarize(runs, by=by)
        counted = runs.dropna(subset=[by] if isinstance(by, str) else by)
        assert parts["runs"].sum() == len(counted)
        assert parts["total_cost"].sum() == pytest.approx(runs.loc[counted.index, "total_cost"].sum())
        assert parts["total_tokens"].sum() == counted["total_tokens"].sum()
    assert summarize(runs, by="agent_name")["share"].sum() == pytest.approx(1.0)


def test_summarize_per_day(runs):
    daily = summarize(runs, freq="D")
    assert list(daily.index) == list(pd.to_datetime(["2026-11-10", "2026-11-11", "2026-11-12"], utc=True))
    assert list(daily["runs"]) == [3, 2, 1]
    assert daily["total_cost"].iloc[0] == pytest.approx(0.12)
    by_both = summarize(runs, by="agent_name", freq="D")
    assert by_both.loc[("Beta", pd.Timestamp("2026-11-10", tz="UTC")), "total_cost"] == pytest.approx(0.09)
    assert by_both["runs"].sum() == 6


def test_summarize_matches_pandas_on_demo_data():
    runs = runs_frame(DemoData(runs=3000, agents=3, seed=4, end=DEMO_END).records())
    table = summarize(runs, by="agent_id")
    seconds = runs["duration_ms"].astype("float64") / 1000
    for agent, row in table.iterrows():
        mine = runs["agent_id"] == agent
        assert row["runs"] == mine.sum()
        assert row["p90_duration_s"] == pytest.approx(seconds[mine].quantile(0.9))
        assert row["p99_duration_s"] == pytest.approx(seconds[mine].quantile(0.99))
        assert row["total_cost"] == pytest.approx(runs.loc[mine, "total_cost"].sum())


@pytest.mark.parametrize("groups", [1, 7, 100_000])  # one group, a few, more than 16-bit codes hold
def test_summarize_quantiles_match_pandas_for_any_number_of_groups(groups):
    rng = np.random.default_rng(groups)
    n = 60_000
    runs = pd.DataFrame({
        "key": pd.Categorical(rng.integers(0, groups, n)),
        "status": pd.Categorical(rng.choice(["completed", "failed", "running"], n)),
        "duration_ms": pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(1, 5000, n)), dtype="Int64"),
        "input_tokens": pd.array(rng.integers(0, 100, n), dtype="Int64"),
        "output_tokens": pd.array(rng.integers(0, 100, n), dtype="Int64"),
        "total_tokens": pd.array(rng.integers(0, 200, n), dtype="Int64"),
        "total_cost": rng.random(n),
    })
    table = summarize(runs, by="key")
    seconds = runs["duration_ms"].astype("float64") / 1000
    for q in (0.5, 0.9, 0.99):
        expected = seconds.groupby(runs["key"], observed=True).quantile(q)
        np.testing.assert_allclose(table[f"p{round(q * 100)}_duration_s"].to_numpy(), expected.to_numpy(), rtol=1e-9)


def test_cost_per_resolved_run(runs):
    table = cost_breakdown(runs, by="agent_name")
    assert list(table.index) == ["Beta", "Alpha"]  # most expensive first
    alpha = table.loc["Alpha"]
    assert alpha["resolved_runs"] == 2
    assert alpha["cost_per_resolved_run"] == pytest.approx(0.07 / 2)  # all the cost, over resolved
    assert alpha["output_token_share"] == pytest.approx(70 / 770)
    assert table["cost_share"].sum() == pytest.approx(1.0)
    only_escalated = cost_breakdown(runs[runs["disposition"] == "escalated"], by="agent_name")
    assert np.isnan(only_escalated.loc["Alpha", "cost_per_resolved_run"])
    several = cost_breakdown(runs, by="agent_name", resolved=["resolved", "escalated"])
    assert several.loc["Alpha", "resolved_runs"] == 3


def test_tool_stats_by_hand(runs, calls):
    table = tool_stats(calls)
    assert table.loc["lookup", "calls"] == 3 and table.loc["lookup", "runs_using"] == 3
    assert table.loc["reply", "runs_using"] == 2
    assert table.loc["lookup", "share_of_runs"] == pytest.approx(3 / 4)  # of runs seen in the calls
    with_runs = tool_stats(calls, runs)
    assert with_runs.loc["lookup", "share_of_runs"] == pytest.approx(3 / 6)  # of all runs
    # lookup: runs 1, 2, 3 (1, 2, 4 s); the others with a duration: 30 s and 3 s.
    assert with_runs.loc["lookup", "p50_duration_s_with"] == 2.0
    assert with_runs.loc["lookup", "p50_duration_s_without"] == pytest.approx(16.5)
    assert with_runs.loc["lookup", "cost_per_run_with"] == pytest.approx(0.07 / 3)
    assert with_runs.loc["lookup", "cost_per_run_without"] == pytest.approx(0.09)
    assert with_runs.loc["escalate", "disposition:escalated"] == 1.0
    assert with_runs.loc["lookup", "disposition:resolved"] == pytest.approx(2 / 3)
    assert list(with_runs.index)[0] == "lookup"  # most calls first


def test_outliers_find_the_planted_run():
    records = [run(i, "a", duration_ms=1000 + 10 * i, cost=0.01) for i in range(50)]
    records += [run(100, "a", duration_ms=90_000), run(101, "b", duration_ms=5000)]
    records += [run(200 + i, "b", duration_ms=5000 + i) for i in range(20)]
    runs = runs_frame(records)
    top = outliers(runs, column="duration_ms", n=3)
    assert top.iloc[0]["id"] == "ar100" and top["score"].is_monotonic_decreasing
    assert top.iloc[0]["percentile"] == 100.0
    # Within its agent, b's slow-ish runs are ordinary: the outlier stays a's.
    per_agent = outliers(runs, column="duration_ms", n=1, by="agent_id")
    assert per_agent.iloc[0]["id"] == "ar100"
    with pytest.raises(ValueError, match="n must be a whole number"):
        outliers(runs, n=0)


def _pandas_outliers(runs, column, *, n=20, by=None, log=True):
    # The straightforward pandas version (groupby medians, rank, nlargest) that outliers()
    # must agree with: it works on the key columns only, but the answer is the same.
    values = runs[column].astype("float64")
    if log:
        values = np.log(values.where(values > 0))
    groups = runs[by].astype(object) if by else pd.Series(0, index=runs.index)
    median = values.groupby(groups, dropna=False).transform("median")
    mad = (values - median).abs().groupby(groups, dropna=False).transform("median") * 1.4826
    out = runs.assign(score=(values - median) / mad.where(mad > 0),
                      percentile=runs[column].astype("float64").rank(pct=True) * 100)
    return out[out["score"].notna()].nlargest(n, "score")


@pytest.mark.parametrize("column, n, by, log", [
    ("duration_ms", 20, "agent_name", True), ("total_cost", 5, None, True),
    ("total_tokens", 10_000, "disposition", False), ("duration_ms", 7, "disposition", True),
])
def test_outliers_match_pandas_with_ties_and_missing_values(column, n, by, log):
    data = DemoData(runs=3000, agents=3, seed=5, end=DEMO_END)
    runs = runs_frame(data.records(), agent_names={a["id"]: a["name"] for a in data.agents})
    runs.loc[runs.index[:40], "agent_name"] = None  # a group of runs without a name
    runs.loc[runs.index[30:80], column] = None  # missing values stay out
    runs.loc[runs.index[100:130], column] = runs[column].iloc[99]  # ties, in row order
    runs.index = runs.index * 2 + 1  # labels are kept
    pd.testing.assert_frame_equal(outliers(runs, column=column, n=n, by=by, log=log),
                                  _pandas_outliers(runs, column, n=n, by=by, log=log),
                                  check_exact=False, rtol=1e-12)


def test_review_sample_is_stratified_and_reproducible():
    runs = runs_frame(DemoData(runs=2000, agents=3, seed=1, end=DEMO_END).records())
    sample = review_sample(runs, n=60, seed=7)
    assert len(sample) == 60 and sample["id"].is_unique
    counts = sample["disposition"].value_counts()
    sizes = runs["disposition"].value_counts()
    # Each disposition gets an equal share, or all it has when it has fewer.
    for disposition, size in sizes.items():
        assert counts.get(disposition, 0) == min(size, counts.max()) or counts[disposition] >= 60 // len(sizes)
    assert set(counts.index) == set(sizes[sizes > 0].index)
    again = review_sample(runs.sample(frac=1.0, random_state=3), n=60, seed=7)
    assert list(again["id"]) == list(sample["id"])  # same runs, same seed: same sample
    other = review_sample(runs, n=60, seed=8)
    assert set(other["id"]) != set(sample["id"])
    assert review_sample(runs, n=5, by=None, seed=1)["id"].is_unique


def test_missing_columns_and_bad_freq_are_named(runs):
    with pytest.raises(ValueError, match="needs the column total_cost"):
        cost_breakdown(runs.drop(columns="total_cost"))
    with pytest.raises(ValueError, match="freq must be a pandas frequency"):
        summarize(runs, freq="fortnightly")
    with pytest.raises(ValueError, match="needs the column nope"):
        summarize(runs, by="nope")


def test_empty_frames_give_empty_tables():
    empty = runs_frame([])
    assert summarize(empty, by="agent_name").empty
    assert list(summarize(empty, by="agent_name").columns) == SUMMARY_COLUMNS
    assert cost_breakdown(empty).empty
    assert review_sample(empty, n=5).empty
