"""Trace samples and the estimates drawn from them: allocation, weights, and the estimator's
bias and interval coverage by simulation over a known population."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conduit_notebook import tool_stats, tool_stats_estimated
from conduit_notebook.sampling import choose_traces, strata_codes, trace_weights


def population(n: int = 3000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Runs in strata of very different sizes and tool habits, and their tool calls."""
    rng = np.random.default_rng(seed)
    agent = rng.choice(["a", "b", "c"], size=n, p=[0.6, 0.3, 0.1])
    disposition = rng.choice(["resolved", "escalated", None], size=n, p=[0.7, 0.25, 0.05])
    status = np.where(disposition == None, "failed", "completed")  # noqa: E711
    runs = pd.DataFrame({
        "id": [f"run{i:05d}" for i in range(n)],
        "agent_id": pd.Categorical(agent), "disposition": pd.Categorical(disposition),
        "status": pd.Categorical(status),
        "duration_ms": pd.array(rng.integers(500, 20_000, size=n), dtype="Int64"),
        "total_cost": rng.gamma(2.0, 0.01, size=n),
    })
    # Tool use differs by agent and disposition: what the strata are for.
    base = {"a": [2.0, 0.5, 0.1], "b": [0.3, 2.5, 0.2], "c": [0.1, 0.1, 3.0]}
    rows = []
    for i in range(n):
        means = np.array(base[agent[i]]) * (1.6 if disposition[i] == "escalated" else 1.0)
        for tool, count in zip(["lookup", "search", "refund"], rng.poisson(means), strict=False):
            rows += [(runs.at[i, "id"], tool)] * int(count)
    calls = pd.DataFrame(rows, columns=["agent_run_id", "name"])
    return runs, calls


def sample(runs: pd.DataFrame, total: int, seed: int) -> pd.DataFrame:
    fetch = choose_traces(runs, np.zeros(len(runs), dtype=bool), total, seed=seed)
    return runs.assign(trace_weight=trace_weights(runs, fetch))


def test_allocation_represents_every_stratum_and_is_reproducible():
    runs, _ = population(2000)
    codes = strata_codes(runs)
    first = choose_traces(runs, np.zeros(len(runs), dtype=bool), 100, seed=3)
    again = choose_traces(runs, np.zeros(len(runs), dtype=bool), 100, seed=3)
    other = choose_traces(runs, np.zeros(len(runs), dtype=bool), 100, seed=4)
    assert (first == again).all() and not (first == other).all()
    assert set(codes[first]) == set(codes)  # every stratum represented
    assert 100 <= first.sum() <= 100 + codes.max() + 1
    # Traces at hand count: a second pass with the first sample in hand asks for nothing.
    assert not choose_traces(runs, first, 100, seed=3).any()
    weights = trace_weights(runs, first)
    assert np.nansum(weights) == pytest.approx(len(runs))
    assert np.isnan(weights[~first]).all()
    full = trace_weights(runs, np.ones(len(runs), dtype=bool))
    assert (full == 1).all()


def test_every_trace_present_gives_exactly_the_counts():
    runs, calls = population(600)
    counted = tool_stats(calls, runs)
    weighted = tool_stats(calls, runs.assign(trace_weight=1.0))
    pd.testing.assert_frame_equal(counted, weighted)


def test_estimator_bias_and_coverage_by_simulation():
    runs, calls = population(3000, seed=1)
    truth = tool_stats(calls, runs)
    draws = 200
    hits = {c: 0 for c in ("calls", "runs_using", "share_of_runs", "calls_per_run")}
    estimates = []
    for k in range(draws):
        sampled = sample(runs, 300, seed=k)
        traced = set(sampled.loc[sampled["trace_weight"].notna(), "id"])
        est = tool_stats(calls[calls["agent_run_id"].isin(traced)], sampled).reindex(truth.index)
        assert est.attrs["estimated_from"] == len(traced)
        estimates.append(est["calls"])
        for column in hits:
            inside = (est[f"{column}_low"] <= truth[column]) & (truth[column] <= est[f"{column}_high"])
            hits[column] += inside.to_numpy()
    mean = pd.concat(estimates, axis=1).mean(axis=1)
    bias = (mean - truth["calls"]).abs() / truth["calls"]
    assert (bias < 0.03).all(), bias  # unbiased: the mean of 200 estimates is within 3%
    for column, count in hits.items():
        coverage = count / draws
        # Nominal 95%; 200 draws give a standard error of about 1.5 points.
        assert (coverage >= 0.89).all() and (coverage <= 0.995).all(), (column, coverage)


def test_estimates_name_their_sample_and_keep_the_comparisons():
    runs, calls = population(1500, seed=2)
    sampled = sample(runs, 200, seed=0)
    traced = set(sampled.loc[sampled["trace_weight"].notna(), "id"])
    est = tool_stats_estimated(calls[calls["agent_run_id"].isin(traced)], sampled)
    assert list(est.columns[:3]) == ["calls", "calls_low", "calls_high"]
    assert (est["calls_low"] <= est["calls"]).all() and (est["calls"] <= est["calls_high"]).all()
    assert {k: est.attrs[k] for k in ("estimated_from", "runs")} == {"estimated_from": len(traced), "runs": 1500}
    assert est["share_of_runs_high"].max() <= 1.0
    assert est["cost_per_run_with"].notna().all()
    shares = est.filter(like="disposition:").sum(axis=1)
    assert np.allclose(shares, 1.0)
