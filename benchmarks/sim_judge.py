"""Judge-assisted review accuracy by simulation, through the public API (review_sample and
review_report with predictions): bias, 95% coverage and the width against the human-only
interval on the same reviews, for judges of several qualities. Figures in docs/judge.md.

    python benchmarks/sim_judge.py [reviews=200] [n=120]
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd

from conduit_notebook import review_report, review_sample

DISPOSITIONS = ["resolved", "escalated", "awaiting_guest", "handed_off", "no_action_needed"]
SHARES = [0.55, 0.22, 0.12, 0.07, 0.04]
ACCURACY = [0.93, 0.85, 0.75, 0.70, 0.60]
JUDGES = {"agrees 95%": 0.95, "agrees 85%": 0.85, "coin flip": 0.5, "always right": None}


def population(n: int = 10_000, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    stratum = rng.choice(len(DISPOSITIONS), size=n, p=SHARES)
    right = rng.random(n) < np.array(ACCURACY)[stratum]
    runs = pd.DataFrame({"id": [f"ar{i:08d}" for i in range(n)],
                         "agent_id": np.where(rng.random(n) < 0.5, "ag_a", "ag_b"),
                         "disposition": pd.Categorical.from_codes(stratum, DISPOSITIONS)})
    return runs, right


def judge(right: np.ndarray, quality: float | None, rng: np.random.Generator) -> np.ndarray:
    if quality is None:
        return np.ones(len(right))
    if quality == 0.5:
        return (rng.random(len(right)) < 0.5).astype(float)
    return np.where(rng.random(len(right)) < quality, right, ~right).astype(float)


def verdicts(sample: pd.DataFrame, truth_of: pd.Series) -> pd.DataFrame:
    """What a careful reviewer records on ``sample``: right where the truth says so."""
    ok = truth_of[sample["id"]].to_numpy()
    return pd.DataFrame({"agent_run_id": sample["id"].to_numpy(),
                         "disposition": sample["disposition"].astype(object).to_numpy(),
                         "verdict": np.where(ok, "correct", "wrong"),
                         "reviewed_disposition": np.where(ok, sample["disposition"].astype(object), "spam"),
                         "agent_id": sample["agent_id"].to_numpy(), "reviewer": "ana"})


def simulate(reviews: int = 200, n: int = 120, seed: int = 0) -> pd.DataFrame:
    runs, right = population()
    truth = float(right.mean())
    truth_of = pd.Series(right, index=runs["id"])
    rows = []
    for k, (name, quality) in enumerate(JUDGES.items()):
        rng = np.random.default_rng([seed, k])  # not hash(name): that changes with each process
        est, cov, ratio, human_cov = [], [], [], []
        for rep in range(reviews):
            predictions = pd.Series(judge(right, quality, rng), index=runs["id"])
            results = verdicts(review_sample(runs, n=n, seed=rep + 1000 * seed), truth_of)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                report = review_report(results, runs, predictions=predictions)
            row, human = report["accuracy"].loc["(all)"], report["human_only"]
            est.append(row["accuracy"])
            cov.append(row["ci_low"] <= truth <= row["ci_high"])
            human_cov.append(human["ci_low"] <= truth <= human["ci_high"])
            ratio.append((row["ci_high"] - row["ci_low"]) / (human["ci_high"] - human["ci_low"]))
        rows.append({"judge": name, "reviews": reviews, "n": n, "bias": np.mean(est) - truth,
                     "coverage": np.mean(cov), "width_ratio": np.mean(ratio), "human_only_coverage": np.mean(human_cov)})
    return pd.DataFrame(rows).set_index("judge")


if __name__ == "__main__":
    reviews = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 120
    print(simulate(reviews, n).round(4).to_string())
