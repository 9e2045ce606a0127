"""Issue 24, the corners of the trace-sample estimates: the weighted median and the quantile
bootstrap agree with their textbook definitions, shares carry the package's one interval,
traces not drawn by the sampler never get random-sample weights."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conduit_notebook import investigate, tool_stats
from conduit_notebook.demo import DemoData
from conduit_notebook.frames import runs_frame, tool_calls_frame
from conduit_notebook.report import investigation_sections
from conduit_notebook.sampling import choose_traces, trace_weights
from conduit_notebook.stats import quantile_draws, share_interval, weighted_median
from conduit_notebook.stats.design import TraceSample

END = datetime(2024, 6, 1, 12, 0)


@pytest.fixture(scope="module")
def full():
    records = DemoData(runs=2000, seed=0, end=END).records()
    return runs_frame(records), tool_calls_frame(records)


def test_weighted_median_is_the_median_with_equal_weights():
    assert weighted_median(np.array([1.0, 2, 3, 4]), np.ones(4)) == 2.5  # was 2.0, the lower median
    assert weighted_median(np.array([4.0, 1, 3, 2]), np.full(4, 7.5)) == 2.5
    assert weighted_median(np.array([1.0, 2, 3]), np.ones(3)) == 2.0
    # A run standing for 3 runs: the half-way point falls inside its value.
    assert weighted_median(np.array([1.0, 2, 3, 4]), np.array([1, 1, 1, 4.0])) == 4.0
    assert weighted_median(np.array([1.0, np.nan, 5]), np.array([1.0, 9, 1])) == 3.0
    assert np.isnan(weighted_median(np.array([]), np.array([])))
    rng = np.random.default_rng(0)
    for n in (2, 5, 10, 51):
        v = rng.lognormal(size=n)
        assert weighted_median(v, np.full(n, 3.0)) == pytest.approx(np.median(v))


def test_quantile_bootstrap_draws_interpolate_as_the_estimate():
    rng = np.random.default_rng(1)
    estimate, draws = quantile_draws(np.array([0.0, 10.0]), 0.5, 20_000, rng)
    # Resamples of {0, 10}: {0, 0}, {0, 10} (half the time, median 5), {10, 10}.
    assert estimate == 5.0
    assert (draws == 5.0).mean() == pytest.approx(0.5, abs=0.02)  # was 0: only the lower statistic
    assert draws.mean() == pytest.approx(5.0, abs=0.15)
    # Against a brute-force bootstrap of np.quantile.
    v = rng.lognormal(size=30)
    for q in (0.25, 0.5, 0.9):
        _, exact = quantile_draws(v, q, 40_000, rng)
        brute = np.quantile(v[rng.integers(0, 30, size=(40_000, 30))], q, axis=1)
        assert exact.mean() == pytest.approx(brute.mean(), rel=0.01)
        assert np.quantile(exact, [0.05, 0.5, 0.95]) == pytest.approx(np.quantile(brute, [0.05, 0.5, 0.95]),
                                                                        rel=0.03)


def test_share_of_runs_interval_is_wilson_at_kish_n(full):
    runs, calls = full
    traced = choose_traces(runs, np.zeros(len(runs), dtype=bool), 150, seed=3)
    sampled = runs.assign(trace_weight=trace_weights(runs, traced))
    seen = calls[calls["agent_run_id"].isin(set(runs["id"].astype(object)[traced]))]
    table = tool_stats(seen, sampled)
    # Wilson's interval never reaches 0 for a tool seen in a run, nor 1 below a share of 1;
    # the clipped normal did (share_of_runs_low 0 for the rarest tools).
    assert (table["share_of_runs_low"] > 0).all()
    assert (table.loc[table["share_of_runs"] < 1, "share_of_runs_high"] < 1).all()
    assert (table["share_of_runs_low"] <= table["share_of_runs"]).all()
    assert (table["share_of_runs"] <= table["share_of_runs_high"]).all()


def small_sample(n_runs=100, n_traced=10):
    """One stratum of ``n_runs`` runs, the first ``n_traced`` traced (weight n_runs / n_traced):
    tool "common" in 9 of 10 traced runs, "rare" in 1."""
    runs = pd.DataFrame({"id": [f"run_{i:04d}" for i in range(n_runs)], "agent_id": "agent_1",
                         "disposition": "resolved", "status": "completed", "duration_ms": 1000.0,
                         "total_cost": 0.01})
    runs["trace_weight"] = np.where(np.arange(n_runs) < n_traced, n_runs / n_traced, np.nan)
    calls = pd.DataFrame({"agent_run_id": [f"run_{i:04d}" for i in range(9)] + ["run_0009"],
                          "name": ["common"] * 9 + ["rare"]})
    return runs, calls


def test_share_of_runs_is_not_a_clipped_normal_in_a_small_sample():
    runs, calls = small_sample()
    table = tool_stats(calls, runs)
    assert table.loc["common", "share_of_runs"] == pytest.approx(0.9)
    # The clipped normal gave [0.72, 1.0] and [0.0, 0.28]: a share of 1 and of 0 "possible".
    assert 0.9 < table.loc["common", "share_of_runs_high"] < 1
    assert 0 < table.loc["rare", "share_of_runs_low"] < 0.1
    # Kish's n here is the 10 traced runs over the finite-population factor 0.9.
    low, high = share_interval(0.9, (0.9 * 0.1 / 9 * 0.9) ** 0.5, 10)
    assert table.loc["common", "share_of_runs_low"] == pytest.approx(low, rel=0.05)


def hand_picked(full, total=200, picked=60, seed=4):
    """A random trace sample of ``total`` and ``picked`` more traces picked by hand (weight 0)."""
    runs, calls = full
    traced = choose_traces(runs, np.zeros(len(runs), dtype=bool), total, seed=seed)
    sampled = runs.assign(trace_weight=trace_weights(runs, traced))
    extra = np.flatnonzero(~traced)[:picked]
    sampled.loc[sampled.index[extra], "trace_weight"] = 0.0
    ids = set(runs["id"].astype(object)[sampled["trace_weight"].notna()])
    return sampled, calls[calls["agent_run_id"].isin(ids)], int(traced.sum())


def test_every_table_counts_the_same_traced_runs(full):
    # Issue 21 item 5: tool_paths said 1,304 (every trace at hand) where tool_stats,
    # repeated_calls and repeat_rates said 1,076 (the random sample) after hand-picked traces.
    runs, calls, drawn = hand_picked(full)
    design = TraceSample.from_runs(runs)
    assert design.is_sample and design.traced == drawn and design.at_hand == drawn + 60
    paths = investigate.tool_paths(calls, runs)
    stats = tool_stats(calls, runs)
    rates = investigate.repeat_rates(calls, runs)
    assert stats.attrs["estimated_from"] == paths.attrs["estimated_from"] == drawn
    assert paths.attrs["note"].startswith(f"estimated from {drawn:,} traced runs")
    assert rates.attrs["estimated_from"] == drawn
    # Each path row says how many of those traced runs take it, and they add up.
    assert paths["traced_runs"].sum() == drawn
    assert design.kish_n == pytest.approx(design.weight.sum() ** 2 / (design.weight ** 2).sum())
    assert 0 < design.kish_n <= drawn


def test_report_paths_threshold_applies_to_traced_runs(full):
    # Issue 21 item 4: "10 runs or more" kept paths seen in 1-3 traced runs (weighted to 10+).
    runs, calls, _ = hand_picked(full, total=120, picked=0)
    paths = investigate.tool_paths(calls, runs)
    few = paths[(paths["runs"] >= 10) & (paths["traced_runs"] < 10)]
    assert len(few)  # the corner exists in this sample
    html = "".join(investigation_sections(runs, calls, "agent_id"))
    section = html[html.index("10 traced runs or more"):]
    section = section[:section.index("</table>")]
    for path in few["path"]:
        assert f">{path}<" not in section.replace(" &gt; ", " > ")


def clustered_sample(n_runs=2000, n_traced=200, seed=0):
    """One stratum; tool "lookup" called once by half the runs, tool "retry" 100 times by 5
    traced runs; tool "rare" called only by a hand-picked (weight 0) run."""
    rng = np.random.default_rng(seed)
    ids = [f"run_{i:05d}" for i in range(n_runs)]
    runs = pd.DataFrame({"id": ids, "agent_id": "agent_1", "disposition": "resolved", "status": "completed",
                         "duration_ms": 1000.0, "total_cost": 0.01})
    traced = np.zeros(n_runs, dtype=bool)
    traced[rng.choice(n_runs, n_traced, replace=False)] = True
    runs["trace_weight"] = np.where(traced, n_runs / n_traced, np.nan)
    picked = np.flatnonzero(~traced)[0]
    runs.loc[picked, "trace_weight"] = 0.0
    in_sample = np.flatnonzero(traced)
    names = (["lookup"] * (n_traced // 2) + ["retry"] * 500 + ["rare"])
    run_of = list(in_sample[: n_traced // 2]) + list(np.repeat(in_sample[-5:], 100)) + [picked]
    return runs, pd.DataFrame({"agent_run_id": [ids[i] for i in run_of], "name": names})


def test_rows_say_what_they_rest_on_and_are_flagged():
    runs, calls = clustered_sample()
    table = tool_stats(calls, runs)
    assert table.loc["lookup", "traced_runs"] == 100 and table.loc["retry", "traced_runs"] == 5
    assert table.loc["retry", "top5_share"] == 1.0
    assert "concentrated in few runs" in table.loc["retry", "flag"]
    assert "few traced runs" in table.loc["retry", "flag"]
    assert table.loc["lookup", "flag"] == ""
    assert "frames.fetch_traces(" in table.attrs["flags"]
    # A slice of 20 traced runs: every row rests on too few.
    small = runs[runs.index < 200]
    sliced = tool_stats(calls, small)
    assert TraceSample.from_runs(small).traced < 30
    assert sliced.loc[sliced["traced_runs"] > 0, "flag"].str.contains("few traced runs").all()


def test_a_known_tool_missing_from_the_sample_gets_a_zero_row_with_an_upper_bound():
    runs, calls = clustered_sample()
    table = tool_stats(calls, runs)
    design = TraceSample.from_runs(runs)
    row = table.loc["rare"]  # called only by the hand-picked run: known, not in the sample
    assert row["calls"] == 0 and row["share_of_runs"] == 0 and row["traced_runs"] == 0
    assert row["share_of_runs_low"] == 0
    assert row["share_of_runs_high"] == pytest.approx(1 - 0.05 ** (1 / design.kish_n))
    assert row["share_of_runs_high"] == pytest.approx(3 / 200, rel=0.02)  # the rule of three
    assert row["runs_using_high"] == pytest.approx(row["share_of_runs_high"] * 2000)
    assert row["flag"] == "not seen in the sample"
    assert "can be missed by this sample" in table.attrs["flags"]


def test_a_known_path_or_transition_missing_from_the_sample_gets_a_zero_row_with_an_upper_bound():
    # Issue 24 item 2 for paths and transitions: tool "rare" was called only by a hand-picked run
    # (weight 0), so no sampled run takes its path or its transitions; they had no row at all.
    runs, calls = clustered_sample()
    runs = runs.assign(input_tokens=100, output_tokens=50, total_tokens=150)
    design = TraceSample.from_runs(runs)
    bound = 1 - 0.05 ** (1 / design.kish_n)
    paths = investigate.tool_paths(calls, runs).set_index("path")
    row = paths.loc["rare"]
    assert row["runs"] == 0 and row["share"] == 0 and row["traced_runs"] == 0 and row["runs_low"] == 0
    assert row["share_high"] == pytest.approx(bound) and row["share_high"] == pytest.approx(3 / 200, rel=0.02)
    assert row["runs_high"] == pytest.approx(bound * 2000)
    assert row["flag"] == "not seen in the sample"
    # Each seen path says what it rests on: 100 runs of "lookup", 5 of "retry" x 100 (few).
    assert paths.loc["lookup", "traced_runs"] == 100 and paths.loc["lookup", "flag"] == ""
    assert paths.loc["retry > " * 99 + "retry", "flag"] == "few traced runs"
    assert "A path taken by 1.5% of runs or fewer can be missed" in paths.attrs["flags"]
    assert "1 known path(s) not seen" in paths.attrs["flags"]
    long = investigate.tool_transitions(calls, runs, long=True).set_index(["from", "to"])
    for key in (("(start)", "rare"), ("rare", "(end)")):
        row = long.loc[key]
        assert row["transitions"] == 0 and row["share"] == 0 and row["traced_runs"] == 0
        assert row["share_of_runs_high"] == pytest.approx(bound) and row["flag"] == "not seen in the sample"
        assert np.isnan(row["transitions_high"])  # a run may take it many times: no bound on the count
    # retry > retry: 495 transitions in 5 runs, concentrated; (start) > lookup: 100 runs, fine.
    assert long.loc[("retry", "retry"), "traced_runs"] == 5 and long.loc[("retry", "retry"), "top5_share"] == 1.0
    assert "concentrated in few runs" in long.loc[("retry", "retry"), "flag"]
    assert long.loc[("(start)", "lookup"), "flag"] == "" and long.loc[("(start)", "lookup"), "traced_runs"] == 100
    assert np.isnan(long.loc[("(start)", "lookup"), "share_of_runs_high"])
    assert "2 known transition(s) not seen" in long.attrs["flags"]
    # Every trace present: counts, no flags and no bounds.
    plain = investigate.tool_transitions(calls, runs.drop(columns="trace_weight"), long=True)
    assert "flag" not in plain and "flag" not in investigate.tool_paths(calls, runs.drop(columns="trace_weight"))


def test_simulated_corners_at_fast_settings():
    """benchmarks/sim_corners.py at a few replications (full settings: docs/statistics.md)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import sim_corners

    runs, calls = sim_corners.population()
    # A 10% agent sliced out of a 200-run sample: every row flagged, or its interval covers.
    small = sim_corners.small_slice(runs, calls, 20)
    assert small["flagged"] == 1.0 or min(small[m][2] for m in ("calls", "share_of_runs")) >= 0.9
    assert abs(small["calls"][0]) < 0.05
    # 5 runs x 100 calls: whenever seen, flagged.
    assert sim_corners.clustered(runs, calls, 20)["flagged"] == 1.0
    # A 2% tool in 50-run samples: absent from many, and then its upper bound holds.
    rare = sim_corners.rare(runs, calls, 30)
    assert rare["absent"] > 0.2 and rare["bound_holds"] == 1.0 and rare["coverage"] >= 0.9
    # Hand-picked heavy users cached: +100% before, the random sample's estimate after.
    picked = sim_corners.hand_picked(runs, calls, 10)
    assert picked["before (every trace weighted)"] > 0.5
    assert abs(picked["after (drawn only)"]) < 0.1


def test_the_tool_plots_count_the_traced_runs_as_the_tables(full):
    from conduit_notebook import plots

    runs, calls, drawn = hand_picked(full)
    ax = plots.plot_tool_paths(calls, runs=runs)
    title = " ".join(ax.get_title().split())
    assert f"estimated from {drawn:,} traced runs" in title  # was every trace at hand: drawn + 60
    ax = plots.plot_tool_usage(calls, runs=runs)
    assert f"estimated from {drawn:,} traced runs" in " ".join(ax.get_title().split())


def test_an_interval_does_not_collapse_when_every_sampled_run_agrees():
    # One stratum of 100 runs, 10 traced, every one calling "common" once: the variance was
    # estimated as 0 and the intervals were the point (calls [100, 100]).
    runs = pd.DataFrame({"id": [f"run_{i:04d}" for i in range(100)], "agent_id": "agent_1",
                         "disposition": "resolved", "status": "completed", "duration_ms": 1000.0,
                         "total_cost": 0.01, "trace_weight": [10.0] * 10 + [np.nan] * 90})
    calls = pd.DataFrame({"agent_run_id": [f"run_{i:04d}" for i in range(10)], "name": "common"})
    row = tool_stats(calls, runs).loc["common"]
    assert row["calls"] == 100 and row["share_of_runs"] == 1.0
    assert row["calls_low"] < 90 and row["runs_using_low"] < 90  # 9 of 10 runs would be 90
    assert row["share_of_runs_low"] < 0.9 and row["share_of_runs_high"] == 1.0
    assert "few traced runs" in row["flag"]


def test_simulated_rare_paths_and_transitions_at_fast_settings():
    """benchmarks/sim_corners.py's paths and transitions at a few replications (full settings:
    docs/statistics.md): a ~2% path and transition in 50-run samples, and a 10% agent's slice."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import sim_corners

    runs, calls = sim_corners.population()
    rare = sim_corners.rare_path_and_transition(runs, calls, 30)
    # Often absent from a 50-run sample; then a row of 0 whose upper bound holds the truth.
    assert rare["path_absent"] > 0.1 and rare["transition_absent"] > 0.2
    assert rare["path_bound_holds"] == 1.0 and rare["transition_bound_holds"] == 1.0
    assert rare["path_coverage"] >= 0.9 and rare["transition_coverage"] >= 0.9
    # A 10% agent out of a 200-run sample: every row flagged, or its interval covers.
    small = sim_corners.slice_paths_and_transitions(runs, calls, 20)
    for what, measures in (("path", ("share", "runs")), ("transition", ("transitions", "share"))):
        assert small[f"{what} flagged"] == 1.0 or min(small[f"{what} {m}"][2] for m in measures) >= 0.9
        assert min(small[f"{what} {m}"][1] for m in measures) >= 0.9


def test_every_path_and_transition_is_covered_or_flagged_at_fast_settings():
    """benchmarks/sim_corners.py's every_row at a few replications: on a workspace of known
    paths (a 2% path, a loop of 5 runs x 50 calls), every interval shown on a row not flagged
    holds the truth at least 90% of the time, and the common rows are unbiased."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import sim_corners

    runs, calls = sim_corners.path_population()
    rows = sim_corners.every_row(runs, calls, 20)
    assert all(v["coverage unflagged"] >= 0.9 for v in rows.values()), rows
    assert all(v["max |bias|, rows of 5%+ of runs"] < 0.1 for v in rows.values()), rows  # 20 draws: noisy
    assert 0 < rows["transitions share"]["flagged"] < 1
