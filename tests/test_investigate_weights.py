"""Transitions, repeat rates and tool comparisons estimated from a trace sample: unchanged with
every trace present, hand-picked traces left out, and bias and 95% interval coverage by
simulation against the demo workspace traced in full (the samples drawn offline with the
fetch's own choose_traces / trace_weights, as in test_tool_estimates), plus one fetch over
real HTTP with a small budget."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from conduit_notebook import (
    ConduitClient,
    compare_tools,
    demo,
    fetch_runs,
    repeat_rates,
    repeated_calls,
    runs_frame,
    tool_calls_frame,
    tool_paths,
    tool_transitions,
)
from conduit_notebook.sampling import choose_traces, trace_weights

END = datetime(2024, 6, 1, 12, 0)
REPLICATES = 200
BUDGET = 200  # traces of 2000 runs: a 10% sample


@pytest.fixture(scope="module")
def full():
    """The 2000-run demo workspace with every trace, its repeated calls, and a split of its
    window in two halves (a, b) for compare_tools."""
    records = demo.DemoData(runs=2000, seed=0, end=END).records()
    # The columns the estimators read (fewer to copy in each of the simulation's samples).
    runs = runs_frame(records)[["id", "agent_id", "disposition", "status", "created_at", "duration_ms",
                                "input_tokens", "output_tokens", "total_tokens", "total_cost"]]
    calls = tool_calls_frame(records)[["agent_run_id", "name", "step", "input"]]
    early = (runs["created_at"] < runs["created_at"].median()).to_numpy()
    return runs, calls, repeated_calls(calls, runs), early


def draw(runs, calls, seed, extra=None):
    """A trace sample as fetch_runs(details=BUDGET, seed=seed) takes it, and the calls it sees."""
    traced = choose_traces(runs, np.zeros(len(runs), dtype=bool), BUDGET, seed=seed)
    sampled = runs.assign(trace_weight=trace_weights(runs, traced))
    if extra is not None:  # hand-picked traces: weight 0, outside the random sample
        sampled.loc[extra & ~traced, "trace_weight"] = 0.0
        traced = traced | extra
    ids = set(runs["id"].astype(object)[traced])
    return sampled, calls[calls["agent_run_id"].isin(ids)], ids


def halves(calls, runs, early):
    ids = set(runs["id"].astype(object)[early])
    inside = calls["agent_run_id"].isin(ids)
    return calls[inside], calls[~inside], runs[early], runs[~early]


@pytest.fixture(scope="module")
def simulated(full):
    """Per replicate (REPLICATES seeds): the three estimates from one 10% trace sample."""
    runs, calls, repeats, early = full
    out = {"transitions": [], "repeat_rates": [], "compare_tools": [], "tool_paths": [], "recent_transitions": [],
           "recent_repeat_rates": []}
    recent = last_week(runs)
    for seed in range(REPLICATES):
        sampled, seen, ids = draw(runs, calls, seed)
        mine = repeats[repeats["agent_run_id"].isin(ids)]
        out["tool_paths"].append(tool_paths(seen, sampled).set_index("path"))
        out["transitions"].append(tool_transitions(seen, sampled, long=True).set_index(["from", "to"]))
        out["repeat_rates"].append(repeat_rates(seen, sampled, repeats=mine))
        # The last week of the month, filtered after the fetch (~55 traced runs): part of each stratum.
        out["recent_transitions"].append(tool_transitions(seen, sampled[recent], long=True).set_index(["from", "to"]))
        out["recent_repeat_rates"].append(repeat_rates(seen, sampled[recent], repeats=mine))
        ca, cb, ra, rb = halves(seen, sampled, early)
        out["compare_tools"].append(compare_tools(ca, cb, ra, rb))
    return out


def last_week(runs):
    return (runs["created_at"] >= runs["created_at"].max() - pd.Timedelta("7D")).to_numpy()


def bias_and_coverage(estimates, truth, column, low, high):
    """Per row of ``truth``: the mean estimate's bias, its Monte Carlo standard error, the
    share of replicates whose interval holds the truth (an unseen row is an estimate of 0
    with no interval: a miss unless the truth is 0), and ``width``: the interval's mean
    half-width over 1.96 against the estimates' spread across replicates (1 for a standard
    error as large as the sampling error; NaN where the estimate does not vary)."""
    rows = [e.reindex(truth.index) for e in estimates]
    value = np.nan_to_num(np.array([r[column].to_numpy(dtype=float) for r in rows]))
    lo = np.array([r[low].to_numpy(dtype=float) for r in rows])
    hi = np.array([r[high].to_numpy(dtype=float) for r in rows])
    true = truth[column].to_numpy(dtype=float)
    spread = value.std(axis=0, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        width = np.nanmean((hi - lo) / 2 / 1.959964, axis=0) / np.where(spread > 0, spread, np.nan)
    return pd.DataFrame({"truth": true, "bias": value.mean(axis=0) - true, "mc_se": spread / np.sqrt(len(rows)),
                         "coverage": ((lo <= true) & (true <= hi)).mean(axis=0), "width": width},
                        index=truth.index)


def assert_unbiased_and_covering(table, label, *, relative=0.03, max_width=1.5):
    """Bias within ``relative`` of the truth or within 4 Monte Carlo standard errors (a mean of
    200 noisy estimates cannot pin a small bias down further); coverage of the nominal 95% at
    least 0.88 for every row (200 replicates: a standard error of 1.5 points) and at least 0.92
    on average over the rows; and intervals not needlessly wide: the median row's standard
    error at most ``max_width`` (1.5) times the sampling error.

    The intervals are conservative by construction: a stratum whose traced runs all agree
    takes its agent's pooled variance (issue 24, item 1), which for a rare transition is most
    strata. On this workspace the count intervals' median width ratio is 1.37-1.40 and their
    mean coverage 0.989-0.990 (before and after issue 21 item 7 redrew the demo's last hours).
    That is why the upper check is on the width: a cap on mean coverage (0.99 here before)
    sits where such coverage lands by Monte Carlo chance, and said nothing about the width."""
    tolerance = np.maximum(relative * table["truth"].abs(), 4 * table["mc_se"])
    assert (table["bias"].abs() <= tolerance).all(), (label, table[table["bias"].abs() > tolerance])
    assert table["coverage"].min() >= 0.88, (label, table.sort_values("coverage").head())
    assert table["coverage"].mean() >= 0.92, (label, table["coverage"].mean())
    assert table["width"].median() <= max_width, (label, table["width"].describe())


# -- every trace present: nothing changes ---------------------------------------------------------

def test_every_trace_present_gives_exactly_todays_tables(full):
    runs, calls, repeats, early = full
    ones = runs.assign(trace_weight=1.0)
    matrix = tool_transitions(calls)
    assert matrix.to_numpy().dtype.kind == "i" and not matrix.attrs
    for frame in (runs, ones):
        pd.testing.assert_frame_equal(tool_transitions(calls, frame), matrix)
        pd.testing.assert_frame_equal(tool_transitions(calls, frame, normalize=True),
                                      tool_transitions(calls, normalize=True))
        pd.testing.assert_frame_equal(repeated_calls(calls, frame), repeats)
        pd.testing.assert_frame_equal(repeat_rates(calls, frame), repeat_rates(calls, runs))
        ca, cb, ra, rb = halves(calls, frame, early)
        pd.testing.assert_frame_equal(compare_tools(ca, cb, ra, rb), compare_tools(*halves(calls, runs, early)))
    assert "trace_weight" not in repeated_calls(calls, ones) and not repeat_rates(calls, ones).attrs
    long = tool_transitions(calls, runs, long=True)
    assert list(long.columns) == ["from", "to", "transitions", "share"]
    assert long["transitions"].sum() == matrix.to_numpy().sum()
    row = long.iloc[0]
    assert row["transitions"] == matrix.loc[row["from"], row["to"]]
    assert row["share"] == pytest.approx(row["transitions"] / matrix.loc[row["from"]].sum())


def test_a_sample_weighs_traced_runs_only_and_says_so(full):
    runs, calls, repeats, early = full
    sampled, seen, ids = draw(runs, calls, 0)
    note = f"estimated from {len(ids):,} traced runs"
    matrix = tool_transitions(seen, sampled)
    assert matrix.attrs["note"] == note
    # Weighted counts add up to about the window's transitions, not the sample's.
    assert matrix.to_numpy().sum() == pytest.approx(tool_transitions(calls).to_numpy().sum(), rel=0.1)
    long = tool_transitions(seen, sampled, long=True)
    assert long.attrs["note"] == note
    assert ((long["share_low"] <= long["share"]) & (long["share"] <= long["share_high"])).all()
    assert ((long["transitions_low"] <= long["transitions"]) & (long["transitions"] <= long["transitions_high"])).all()
    rates = repeat_rates(seen, sampled, repeats=repeated_calls(seen, sampled))
    assert rates.attrs["note"] == note
    assert rates["traced_runs"].sum() == len(ids) and rates["runs"].sum() == len(runs)
    listed = repeated_calls(seen, sampled)
    assert listed.attrs["note"] == note and (listed["trace_weight"] > 1).all()
    table = compare_tools(*halves(seen, sampled, early))
    assert table.attrs["note"].startswith("estimated from ") and table.attrs["estimated_from"] == len(ids)
    assert table["method"].str.startswith("stratified ratio estimate").all()
    # A fully traced window against a sampled one: the sampled side estimated, the other counted.
    ca, _, ra, _ = halves(calls, runs, early)
    _, cb, _, rb = halves(seen, sampled, early)
    mixed = compare_tools(ca, cb, ra, rb)
    assert mixed.attrs["note"].endswith("traced runs; a: every trace")
    pd.testing.assert_series_equal(mixed["a"], compare_tools(*halves(calls, runs, early))["a"].reindex(mixed.index))
    assert (mixed["ci_low"] <= mixed["difference"]).all() and (mixed["difference"] <= mixed["ci_high"]).all()
    # Hand-picked traces (weight 0) are listed but not in any estimate.
    costly = (runs["total_cost"].rank(ascending=False, method="first") <= 50).to_numpy()
    picked, picked_seen, picked_ids = draw(runs, calls, 0, extra=costly)
    assert len(picked_ids) > len(ids)
    # Their transitions the random sample did not take are known rows of 0 with an upper bound
    # (issue 24 item 2); every other row is as without them.
    with_picked = tool_transitions(picked_seen, picked, long=True)
    extra_rows = with_picked["traced_runs"] == 0
    assert extra_rows.any() and (with_picked.loc[extra_rows, "transitions"] == 0).all()
    assert (with_picked.loc[extra_rows, "share_of_runs_high"] > 0).all()
    pd.testing.assert_frame_equal(with_picked[~extra_rows], long)
    pd.testing.assert_frame_equal(repeat_rates(picked_seen, picked), rates)
    pd.testing.assert_frame_equal(compare_tools(*halves(picked_seen, picked, early)), table)
    extra = repeated_calls(picked_seen, picked)
    assert len(extra) >= len(listed) and (extra["trace_weight"] >= 0).all()


# -- simulation: bias and coverage ---------------------------------------------------------------

def test_transition_shares_and_counts_bias_and_coverage(full, simulated):
    runs, calls, _, _ = full
    truth = tool_transitions(calls, runs, long=True).set_index(["from", "to"])
    truth = truth[truth["transitions"] >= 50]  # the transitions a 10% sample sees a few of
    assert len(truth) >= 30
    shares = bias_and_coverage(simulated["transitions"], truth, "share", "share_low", "share_high")
    assert_unbiased_and_covering(shares, "transition share", relative=0.05)
    counts = bias_and_coverage(simulated["transitions"], truth, "transitions", "transitions_low", "transitions_high")
    assert_unbiased_and_covering(counts, "transitions")


def test_repeat_rate_bias_and_coverage(full, simulated):
    runs, calls, repeats, _ = full
    truth = repeat_rates(calls, runs, repeats=repeats)
    assert truth["share"].min() > 0.05  # every agent repeats sometimes (one of them often: planted)
    table = bias_and_coverage(simulated["repeat_rates"], truth, "share", "ci_low", "ci_high")
    assert_unbiased_and_covering(table, "repeat rate", relative=0.05)
    estimated = pd.concat([e["runs_with_repeat"] for e in simulated["repeat_rates"]], axis=1).mean(axis=1)
    assert np.allclose(estimated.reindex(truth.index), truth["runs_with_repeat"], rtol=0.05)


def test_compare_tools_difference_bias_and_coverage(full, simulated):
    runs, calls, _, early = full
    truth = compare_tools(*halves(calls, runs, early))
    # The differences are small (the two halves differ by a planted step in escalations): the
    # bias is judged against the Monte Carlo error, the shares of each side relative to truth.
    table = bias_and_coverage(simulated["compare_tools"], truth, "difference", "ci_low", "ci_high")
    assert_unbiased_and_covering(table, "compare_tools difference")
    for side in ("a", "b"):
        values = pd.concat([e[side] for e in simulated["compare_tools"]], axis=1).reindex(truth.index)
        bias = (values.mean(axis=1) - truth[side]).abs()
        mc_se = values.std(axis=1) / np.sqrt(values.shape[1])
        assert (bias <= np.maximum(0.03 * truth[side], 4 * mc_se)).all(), (side, bias / truth[side])
    # The planted change is found in most samples; no other tool is significant in many.
    # The planted change (the tool behind escalations, +7 points between the halves: the largest
    # true difference) is the one found most often; no other tool is significant in many
    # samples. With 100 traced runs a side and Holm over 14 tools it is seldom found at all.
    significant = pd.concat([e["significant"] for e in simulated["compare_tools"]], axis=1).mean(axis=1)
    planted = truth["difference"].abs().idxmax()
    assert planted == "create_escalation"
    others = significant.drop(planted)
    assert significant[planted] >= others.max() and others.max() <= 0.05, significant.sort_values().tail(3)


def test_a_week_filtered_after_the_fetch_bias_and_coverage(full, simulated):
    runs, calls, repeats, _ = full
    week = runs[last_week(runs)]
    week_calls = calls[calls["agent_run_id"].isin(set(week["id"].astype(object)))]
    truth = tool_transitions(week_calls, week, long=True).set_index(["from", "to"])
    truth = truth[truth["transitions"] >= 50]
    assert len(truth) >= 10
    shares = bias_and_coverage(simulated["recent_transitions"], truth, "share", "share_low", "share_high")
    assert_unbiased_and_covering(shares, "transition share, last week", relative=0.05)
    rates = repeat_rates(week_calls, week, repeats=repeats)
    table = bias_and_coverage(simulated["recent_repeat_rates"], rates, "share", "ci_low", "ci_high")
    assert_unbiased_and_covering(table, "repeat rate, last week", relative=0.05)


def test_tool_path_shares_bias_and_coverage(full, simulated):
    runs, calls, _, _ = full
    truth = tool_paths(calls, runs).set_index("path")
    # Paths a 10% sample sees about 3 times or more: a rarer path is often not seen at all (no
    # row, no interval: counted as a miss), so its coverage falls to 80-90%.
    truth = truth[truth["runs"] >= 30].astype({"runs": float})
    assert len(truth) >= 8
    shares = bias_and_coverage(simulated["tool_paths"], truth, "share", "share_low", "share_high")
    # Path shares' (and so runs') Wilson intervals at Kish's n are 1.6-2.6 times wider than the sampling error
    # (median 2.2): Kish's n counts the weights' cost but not the strata's gain, and a run's path
    # follows its agent and disposition, the strata. Conservative, and recorded as such (issue 24).
    assert_unbiased_and_covering(shares, "path share", max_width=2.5)
    counts = bias_and_coverage(simulated["tool_paths"], truth, "runs", "runs_low", "runs_high")
    assert_unbiased_and_covering(counts, "path runs", max_width=2.5)


# -- real HTTP -----------------------------------------------------------------------------------

def test_a_small_budget_over_http_is_close_to_the_full_traces():
    with demo.serve(runs=1200, agents=3, seed=4, end=END) as server:
        client = ConduitClient(server.token, base_url=server.base_url, requests_per_minute=60_000)
        frames = fetch_runs(client=client, details=240, cache=False)
        records = server.data.records()
    runs, calls = frames.runs, frames.tool_calls
    assert 240 <= frames.traced < 280 and runs["trace_weight"].isna().any()
    # The truth: the same runs, every trace (the records the server holds).
    full_runs, full_calls = runs.drop(columns="trace_weight"), tool_calls_frame(records)
    assert set(runs_frame(records)["id"].astype(object)) == set(runs["id"].astype(object))
    note = f"estimated from {frames.traced:,} traced runs"

    truth = tool_transitions(full_calls, full_runs, long=True).set_index(["from", "to"])
    estimate = tool_transitions(calls, runs, long=True).set_index(["from", "to"])
    assert estimate.attrs["note"] == note
    big = truth[truth["transitions"] >= 100].index
    inside = [estimate.at[i, "share_low"] <= truth.at[i, "share"] <= estimate.at[i, "share_high"] for i in big]
    assert sum(inside) >= len(big) - 1
    # Each estimate within 1.5 of its own interval's half-widths (3 standard errors): a fixed
    # tolerance (0.12 before) is tight for a row with few transitions out of its tool and loose
    # for the commonest; which rows are close depends on the sample the seed draws.
    half = (estimate.loc[big, "share_high"] - estimate.loc[big, "share_low"]) / 2
    assert ((estimate.loc[big, "share"] - truth.loc[big, "share"]).abs() <= 1.5 * half).all()

    true_rates = repeat_rates(full_calls, full_runs)
    rates = repeat_rates(calls, runs)
    assert rates.attrs["note"] == note and (rates["runs"] == true_rates["runs"].reindex(rates.index)).all()
    assert np.allclose(rates["share"], true_rates["share"].reindex(rates.index), atol=0.08)
    assert ((rates["ci_low"] <= true_rates["share"].reindex(rates.index))
            & (true_rates["share"].reindex(rates.index) <= rates["ci_high"])).all()

    early = (runs["created_at"] < runs["created_at"].median()).to_numpy()
    full_early = full_runs["id"].isin(set(runs.loc[early, "id"].astype(object))).to_numpy()
    true_diff = compare_tools(*halves(full_calls, full_runs, full_early))
    diff = compare_tools(*halves(calls, runs, early))
    assert diff.attrs["note"].startswith("estimated from ")
    true_diff = true_diff.reindex(diff.index)
    for side in ("a", "b"):
        assert np.allclose(diff[side], true_diff[side], atol=0.08), side
    assert np.allclose(diff["difference"], true_diff["difference"], atol=0.15)  # about 3 standard errors
    hit = (diff["ci_low"] <= true_diff["difference"]) & (true_diff["difference"] <= diff["ci_high"])
    # 14 tools: offline, 94% of 200 samples of this design miss at most 2 (this one misses 2).
    assert hit.sum() >= len(diff) - 2


def test_the_plots_show_the_note_and_the_intervals(full, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from conduit_notebook import plot_compare, plot_tool_paths

    runs, calls, _, early = full
    sampled, seen, ids = draw(runs, calls, 0)
    table = compare_tools(*halves(seen, sampled, early))
    ax = plot_compare(table.head(6))
    assert ax.get_title().endswith(f"({table.attrs['note']})")
    ax.figure.savefig(tmp_path / "compare_tools.png")
    plt.close(ax.figure)
    ax = plot_tool_paths(seen, runs=sampled)
    paths = tool_paths(seen, sampled).set_index("path")
    assert f"estimated from {len(ids):,} traced runs" in " ".join(ax.get_title().split())  # the title wraps
    texts = [t.get_text().strip() for t in ax.texts]
    top = paths.iloc[0]
    assert any(t.startswith(f"≈{top['runs']:,.0f} ({top['runs_low']:,.0f}–{top['runs_high']:,.0f})") for t in texts)
    assert top["runs_low"] < top["runs"] < top["runs_high"]
    ax.figure.savefig(tmp_path / "paths.png")
    plt.close(ax.figure)
    plain = plot_tool_paths(calls, runs=runs)  # every trace: plain counts, no interval
    assert not any("≈" in t.get_text() for t in plain.texts) and "estimated" not in plain.get_title()
    plt.close(plain.figure)


def test_compare_tools_rows_p_value_is_its_intervals(simulated):
    """A sampled side's row had Newcombe's interval at Kish's n but a design-based z-test's
    p-value: in these 200 samples 25 of 2,800 rows disagreed with their own interval at 0.05
    (issue 24 item 5). The p-value now inverts the interval."""
    rows = pd.concat(simulated["compare_tools"])
    rows = rows[rows["ci_low"].notna()]
    assert len(rows) > 1000
    excludes = (rows["ci_low"] > 0) | (rows["ci_high"] < 0)
    assert (excludes == (rows["p_value"] < 0.05)).all()
