"""Judge-assisted review accuracy (prediction-powered), through the public API: a fast seeded
version of benchmarks/sim_judge.py, and report["judge"] against direct counts."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conduit_notebook import judge_from_outcomes, review_report, review_sample

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from sim_judge import judge, population, simulate, verdicts  # noqa: E402


def test_a_good_judge_narrows_the_interval_without_bias_and_a_useless_one_costs_nothing():
    table = simulate(reviews=30, n=120, seed=1)
    good = table.loc["agrees 95%"]
    assert abs(good["bias"]) < 0.015 and good["coverage"] >= 0.85 and good["width_ratio"] <= 0.85
    for useless in ("coin flip", "always right"):
        row = table.loc[useless]
        assert abs(row["bias"]) < 0.015 and row["coverage"] >= 0.85 and row["width_ratio"] <= 1.1


def _review(n=120, seed=0, quality=0.9):
    runs, right = population()
    truth_of = pd.Series(right, index=runs["id"])
    predictions = pd.Series(judge(right, quality, np.random.default_rng(seed)), index=runs["id"])
    return runs, verdicts(review_sample(runs, n=n, seed=seed), truth_of), predictions


def test_report_judge_equals_direct_counts_on_the_reviewed_runs():
    runs, results, predictions = _review(quality=0.95)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = review_report(results, runs, predictions=predictions)
        plain = review_report(results, runs)
    human = results["verdict"].eq("correct").to_numpy()
    says = predictions[results["agent_run_id"]].to_numpy() >= 0.5
    judge_stats = report["judge"]
    assert judge_stats["n"] == len(results)
    assert judge_stats["agreement"]["value"] == pytest.approx((human == says).mean())
    assert judge_stats["sensitivity"]["value"] == pytest.approx((~says & ~human).sum() / (~human).sum())
    assert judge_stats["specificity"]["value"] == pytest.approx((says & human).sum() / human.sum())
    for name in ("agreement", "sensitivity", "specificity"):
        part = judge_stats[name]
        assert part["ci_low"] <= part["value"] <= part["ci_high"]
    expected_kappa = ((human == says).mean() - (human.mean() * says.mean() + (1 - human.mean()) * (1 - says.mean()))) \
        / (1 - (human.mean() * says.mean() + (1 - human.mean()) * (1 - says.mean())))
    assert judge_stats["kappa"] == pytest.approx(expected_kappa)
    shown = judge_stats["disagreements"]
    assert len(shown) == min(10, int((human != says).sum())) > 0
    assert set(shown["agent_run_id"]) <= set(results["agent_run_id"][human != says])
    # The human-only figures stay beside the judge-assisted ones.
    pd.testing.assert_series_equal(report["human_only"], plain["accuracy"].loc["(all)"])
    assert "prediction-powered" in report["method"] and report["judge_assisted"]["used"]
    row = report["accuracy"].loc["(all)"]
    assert row["ci_high"] - row["ci_low"] < report["human_only"]["ci_high"] - report["human_only"]["ci_low"]


def test_predictions_are_checked_and_can_be_a_column():
    runs, results, predictions = _review(quality=0.95)
    runs = runs.assign(judge=predictions.to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_column = review_report(results, runs, predictions="judge")
        by_series = review_report(results, runs, predictions=predictions)
    pd.testing.assert_frame_equal(by_column["accuracy"], by_series["accuracy"])
    with pytest.raises(ValueError, match="runs has no column 'nope'"):
        review_report(results, runs, predictions="nope")
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        review_report(results, runs, predictions=predictions * 3)
    with pytest.raises(ValueError, match="predictions need runs="):
        review_report(results, predictions=predictions)


def test_judge_from_outcomes():
    outcomes = pd.DataFrame({"agent_run_id": ["a", "b", "c", "d", "e", "f"],
                             "outcome": pd.Categorical(["held", "came_back_escalated", "escalation_dismissed",
                                                        "escalation_acted", "unknown", "came_back"])})
    judged = judge_from_outcomes(outcomes)
    assert judged.to_dict() == pytest.approx({"a": 1.0, "b": 0.0, "c": 0.0, "d": 1.0, "e": np.nan, "f": np.nan},
                                             nan_ok=True)
    with pytest.raises(ValueError, match="takes the frame from outcomes"):
        judge_from_outcomes(pd.DataFrame({"x": [1]}))


def test_the_report_shows_the_judge_beside_people(server, client, tmp_path):
    from types import SimpleNamespace

    from conduit_notebook import fetch_runs
    from conduit_notebook.report import html_report

    frames = fetch_runs(client=client, details=False, progress=False)
    runs = frames.runs[frames.runs["disposition"].notna()]
    rng = np.random.default_rng(4)
    right = pd.Series(rng.random(len(runs)) < 0.85, index=runs["id"].astype(object).to_numpy())
    judge_says = right.where(rng.random(len(runs)) < 0.95, ~right).astype(float)
    sample = runs.sample(120, random_state=1)
    ok = right[sample["id"].astype(object)].to_numpy()
    reviews = pd.DataFrame({"agent_run_id": sample["id"].astype(object).to_numpy(),
                            "agent_id": sample["agent_id"].astype(object).to_numpy(),
                            "disposition": sample["disposition"].astype(object).to_numpy(),
                            "verdict": np.where(ok, "correct", "wrong"),
                            "reviewed_disposition": np.where(ok, sample["disposition"].astype(object), "spam"),
                            "note": "", "reviewer": "ana", "reviewed_at": pd.Timestamp("2026-11-20", tz="UTC")})
    page = html_report(SimpleNamespace(runs=frames.runs, tool_calls=frames.tool_calls, errors=frames.errors,
                                       source="demo"), reviews=reviews, judge=judge_says)
    section = page.split("id='disposition-review'")[1]
    assert "Judge-assisted accuracy" in section and "With the judge" in section and "people only" in section
    assert "agreement" in section and "kappa" in section


def test_cli_judge_needs_reviews_and_a_readable_csv(tmp_path, capsys):
    from conduit_notebook.cli import main

    bad = tmp_path / "judge.csv"
    bad.write_text("agent_run_id,score\nar1,0.3\n")
    reviews = tmp_path / "reviews.csv"
    reviews.write_text("agent_run_id,agent_id,disposition,verdict,reviewed_disposition,note,reviewer,reviewed_at\n")
    assert main(["report", "--demo", "--judge", str(bad), "--out", str(tmp_path / "r.html")]) == 2
    assert "--judge needs --reviews" in capsys.readouterr().err
    assert main(["report", "--demo", "--judge", str(bad), "--reviews", str(reviews),
                 "--out", str(tmp_path / "r.html")]) == 2
    assert "needs the columns agent_run_id and prediction" in capsys.readouterr().err
    bad.write_text("agent_run_id,prediction\nar1,maybe\n")
    assert main(["report", "--demo", "--judge", str(bad), "--reviews", str(reviews),
                 "--out", str(tmp_path / "r.html")]) == 2
    assert "line 2 has 'maybe'" in capsys.readouterr().err


def test_the_review_widget_shows_the_judge_only_after_the_reviewer(server, client, tmp_path):
    from conduit_notebook import DispositionReview, fetch_runs

    frames = fetch_runs(client=client, details=False, progress=False)
    sample = frames.runs[frames.runs["disposition"].notna()].head(3)
    predictions = pd.Series([0.9, 0.1, 0.8], index=sample["id"].astype(object).to_numpy())
    review = DispositionReview(frames, sample=sample, store=str(tmp_path / "r.csv"), predictions=predictions)
    first, second = sample["id"].iloc[0], sample["id"].iloc[1]
    shown = review.controls["judge"].value + review.controls["progress"].value + review.controls["inspector"].controls["header"].value
    assert "0.90" not in shown and review.controls["judge"].value == ""  # nothing before the verdict
    review.controls["right"].value = "spam" if sample["disposition"].iloc[0] != "spam" else "resolved"
    review.controls["wrong"].click()
    line = review.controls["judge"].value
    assert first in line and "you said <b>wrong</b>" in line and "the judge said <b>right</b> (0.90)" in line
    assert "disagree" in line and second not in line and "0.10" not in line  # the current run's stays hidden


def test_a_judge_plans_a_smaller_review_for_the_same_margin():
    runs, right = population()
    alone = review_sample(runs, margin=0.05)
    with_judge = review_sample(runs, margin=0.05, expected_agreement=0.95)
    assert len(with_judge) < 0.7 * len(alone)  # 146 against 241 here
    assert "judge agreeing 95%" in with_judge.attrs["review_plan"].attrs["design"]
    # Delivered (5 reviews): the judge-assisted half-width stays within the margin asked.
    truth_of = pd.Series(right, index=runs["id"])
    halves = []
    for seed in range(5):
        predictions = pd.Series(judge(right, 0.95, np.random.default_rng(seed)), index=runs["id"])
        sample = review_sample(runs, margin=0.05, expected_agreement=0.95, seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            row = review_report(verdicts(sample, truth_of), runs, predictions=predictions)["accuracy"].loc["(all)"]
        halves.append((row["ci_high"] - row["ci_low"]) / 2)
    assert np.mean(halves) <= 0.05
    with pytest.raises(ValueError, match="expected_agreement must be"):
        review_sample(runs, margin=0.05, expected_agreement=1.5)


def test_the_review_widget_reaches_its_target_with_the_judge(tmp_path):
    from types import SimpleNamespace

    from conduit_notebook import DispositionReview, tool_calls_frame

    runs, right = population()
    runs = runs.assign(status="completed", created_at=pd.Timestamp("2026-11-20", tz="UTC"),
                       completed_at=pd.Timestamp("2026-11-20", tz="UTC"), conversation_id=None,
                       **dict.fromkeys(["duration_ms", "input_tokens", "output_tokens", "total_cost"], np.nan),
                       **dict.fromkeys(["error", "response", "reflection", "disposition_reason", "agent_name"], None))
    predictions = pd.Series(judge(right, 0.95, np.random.default_rng(0)), index=runs["id"])
    sample = review_sample(runs, margin=0.05, expected_agreement=0.95, seed=0)
    frames = SimpleNamespace(runs=runs, tool_calls=tool_calls_frame([]))
    review = DispositionReview(frames, sample=sample, store=str(tmp_path / "r.csv"), predictions=predictions)
    truth_of = pd.Series(right, index=runs["id"])
    for _ in range(len(sample)):
        run_id = review.current
        ok = truth_of[run_id]
        review.judge("correct" if ok else "wrong", right=None if ok else "spam")
    now = review.reached()
    assert now.get("with_judge") and now["half_width"] <= 0.05
    assert "with the judge" in review.controls["interval"].value and "target reached" in review.controls["interval"].value
