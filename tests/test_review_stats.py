"""The review numbers hold up: simulated reviews of a population with known accuracy."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from conduit_notebook import review_report, review_sample
from conduit_notebook.review import review_plan, run_votes, stratified_accuracy, wilson_interval

DISPOSITIONS = ["resolved", "escalated", "awaiting_guest", "handed_off", "no_action_needed", "spam"]
SHARES = [0.60, 0.21, 0.12, 0.035, 0.025, 0.01]
ACCURACY = [0.95, 0.80, 0.70, 0.60, 0.55, 0.50]


def population(n: int = 10_000, seed: int = 11) -> tuple[pd.DataFrame, pd.Series]:
    """Runs with a known per-disposition accuracy, and whether each run's disposition is right."""
    rng = np.random.default_rng(seed)
    stratum = rng.choice(len(DISPOSITIONS), size=n, p=SHARES)
    right = rng.random(n) < np.array(ACCURACY)[stratum]
    runs = pd.DataFrame({
        "id": pd.array([f"ar{i:030d}" for i in range(n)], dtype="string"),
        "agent_id": pd.Categorical(np.where(rng.random(n) < 0.6, "ag_a", "ag_b")),
        "disposition": pd.Categorical.from_codes(stratum, DISPOSITIONS),
    })
    return runs, pd.Series(right, index=runs["id"].to_numpy())


RUNS, RIGHT = population()
TRUTH = float(RIGHT.mean())


def estimate(sample: pd.DataFrame) -> dict[str, float]:
    """The (all) estimate review_report gives, computed by the same function without the frames."""
    judged = sample["disposition"].value_counts().reindex(DISPOSITIONS, fill_value=0)
    correct = RIGHT[sample["id"].to_numpy()].groupby(sample["disposition"].to_numpy(), observed=False).sum()
    sizes = RUNS["disposition"].value_counts().reindex(DISPOSITIONS)
    return stratified_accuracy(correct.reindex(DISPOSITIONS, fill_value=0), judged, sizes)


def verdicts(sample: pd.DataFrame, reviewer: str = "ana") -> pd.DataFrame:
    right = RIGHT[sample["id"].to_numpy()].to_numpy()
    return pd.DataFrame({"agent_run_id": sample["id"].astype(object).to_numpy(),
                         "disposition": sample["disposition"].astype(object).to_numpy(),
                         "verdict": np.where(right, "correct", "wrong"),
                         "reviewed_disposition": np.where(right, sample["disposition"].astype(object), "handed_off"),
                         "reviewer": reviewer})


def simulate(reps: int, **design) -> tuple[float, float, float]:
    """Mean estimate minus truth, coverage of the 95% interval, mean half-width."""
    values, covered, half = [], 0, []
    for seed in range(reps):
        result = estimate(review_sample(RUNS, seed=seed, **design))
        values.append(result["estimate"])
        covered += result["ci_low"] <= TRUTH <= result["ci_high"]
        half.append(result["half_width"])
    return float(np.mean(values)) - TRUTH, covered / reps, float(np.mean(half))


def test_review_report_all_row_is_the_stratified_estimate():
    sample = review_sample(RUNS, n=120, seed=3)
    report = review_report(verdicts(sample), RUNS)
    overall = report["accuracy"].loc["(all)"]
    expected = estimate(sample)
    assert overall["accuracy"] == pytest.approx(expected["estimate"])
    assert (overall["ci_low"], overall["ci_high"]) == pytest.approx((expected["ci_low"], expected["ci_high"]))
    assert overall["population"] == len(RUNS) and overall["reviewed"] == 120
    assert report["weighted"] and "stratified" in report["method"]
    # Per disposition: the plain share with its Wilson interval, narrowed by the finite population
    # correction (spam: 20 of about 100 runs judged).
    row = report["accuracy"].loc["spam"]
    plain = wilson_interval(row["correct"], row["reviewed"])
    assert row["accuracy"] == row["correct"] / row["reviewed"]
    assert plain[0] <= row["ci_low"] <= row["accuracy"] <= row["ci_high"] <= plain[1]
    assert row["ci_high"] - row["ci_low"] > 0.85 * (plain[1] - plain[0])
    # Per agent: the same estimator within each agent.
    assert set(report["by_agent"].index) == {"ag_a", "ag_b"}
    assert report["by_agent"]["reviewed"].sum() == 120
    # The sample over-samples rare dispositions: the plain share is far off, the weighted one is not.
    plain = (verdicts(sample)["verdict"] == "correct").mean()
    assert abs(plain - TRUTH) > 0.08 and abs(overall["accuracy"] - TRUTH) < 0.06


def test_simulated_reviews_are_unbiased_and_cover():
    figures = {}
    for name, design, reps in (("n=120", {"n": 120}, 100), ("n=40 (small strata)", {"n": 40}, 100),
                               ("margin=0.05", {"margin": 0.05}, 100)):
        bias, coverage, half = simulate(reps, **design)
        figures[name] = (bias, coverage, half)
        assert abs(bias) < 0.02, (name, bias)
        assert coverage >= 0.90, (name, coverage)
    print({k: tuple(round(x, 4) for x in v) for k, v in figures.items()}, f"truth {TRUTH:.4f}")
    # Sized for ±5% at the worst-case planning accuracy (0.5): at most about ±5%.
    assert 0.025 < figures["margin=0.05"][2] <= 0.05


def test_a_review_sized_for_a_margin_reaches_it():
    plan = review_plan(RUNS, margin=0.05, expected=0.86)
    assert plan.loc["(all)", "expected_half_width"] <= 0.05
    assert (plan["sample"].drop("(all)") >= 10).all()
    bias, coverage, half = simulate(40, margin=0.05, expected=0.86)
    assert 0.04 <= half <= 0.055 and coverage >= 0.88 and abs(bias) < 0.02
    # A smaller margin needs more runs.
    assert review_plan(RUNS, margin=0.03).loc["(all)", "sample"] > plan.loc["(all)", "sample"]


def test_sample_is_interleaved_and_ignores_row_order():
    sample = review_sample(RUNS, n=120, seed=5)
    # The first six runs are one of each disposition: stopping early still covers every stratum.
    assert set(sample["disposition"].head(6)) == set(DISPOSITIONS)
    first_half = sample.head(60)["disposition"].value_counts()
    assert (first_half >= 9).all()
    shuffled = RUNS.sample(frac=1.0, random_state=1)
    assert list(review_sample(shuffled, n=120, seed=5)["id"]) == list(sample["id"])
    plan = sample.attrs["review_plan"]
    assert plan.loc["(all)", "sample"] == 120 and plan.loc["(all)", "population"] == len(RUNS)
    with pytest.raises(ValueError, match="not both"):
        review_sample(RUNS, n=10, margin=0.05)
    with pytest.raises(ValueError, match="margin must be"):
        review_sample(RUNS, margin=5)


def test_one_run_one_vote_and_disagreements():
    sample = review_sample(RUNS, n=12, seed=2)
    ana = verdicts(sample, "ana")
    ben = verdicts(sample, "ben")
    cid = ana["agent_run_id"].iloc[0]
    ben.loc[0, ["verdict", "reviewed_disposition"]] = ["wrong", "spam"] if ana.loc[0, "verdict"] == "correct" \
        else ["correct", ana.loc[0, "disposition"]]
    ben["note"] = "looked again"
    both = pd.concat([ana.assign(note=""), ben], ignore_index=True)
    votes = run_votes(both)
    assert len(votes) == 12 and votes.set_index("agent_run_id").loc[cid, "verdict"] == "unsure"
    report = review_report(both, RUNS)
    assert report["accuracy"].loc["(all)", "reviewed"] == 11  # one run, one vote; the tie is unsure
    assert report["accuracy"].loc["(all)", "unsure"] == 1
    assert list(report["disagreements"]["agent_run_id"]) == [cid, cid]
    assert set(report["disagreements"]["reviewer"]) == {"ana", "ben"}
    low, high = report["kappa_ci"]
    assert report["kappa_runs"] == 12 and low <= report["kappa"] <= high


def test_census_and_unreviewed_strata():
    # Every run of every stratum judged: no sampling error left.
    full = stratified_accuracy([9, 1], [10, 2], [10, 2])
    assert full["ci_low"] == full["ci_high"] == pytest.approx(full["estimate"])
    # A stratum nobody judged widens the interval by its share, to the worst case.
    part = stratified_accuracy([9, 0], [10, 0], [80, 20])
    assert part["unreviewed_share"] == pytest.approx(0.2)
    assert part["ci_high"] >= 0.2 + 0.8 * 0.9 and part["ci_low"] <= 0.8 * 0.9


def test_unweighted_report_says_so():
    sample = review_sample(RUNS, n=30, seed=1)
    with pytest.warns(UserWarning, match="unweighted"):
        report = review_report(verdicts(sample))
    assert not report["weighted"] and "unweighted" in report["note"]
    assert math.isnan(report["kappa"])
