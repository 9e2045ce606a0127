"""compare's Holm family by simulation: power to see a 5-point escalation change (20% -> 25%,
300 runs a side, nothing else changing) and the family-wise type I error when nothing changes,
through the public API.

    python benchmarks/sim_compare.py [--reps 400] [--n-boot 500]

Runs: completed, disposition escalated / resolved / handed_off / abandoned, cost log-normal
(sigma 1), duration log-normal. Figures in docs/compare.md and
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conduit_notebook import compare  # noqa: E402


def side(n: int, escalation: float, rng: np.random.Generator, cost_sigma: float = 1.0) -> pd.DataFrame:
    """``n`` runs: 8% failed; among the others escalated at ``escalation``, the rest resolved
    (80%), handed off (12%) or abandoned (8%)."""
    failed = rng.random(n) < 0.08
    escalated = rng.random(n) < escalation
    other = rng.choice(["resolved", "handed_off", "abandoned"], size=n, p=[0.80, 0.12, 0.08])
    disposition = np.where(failed, None, np.where(escalated, "escalated", other))
    return pd.DataFrame({
        "status": pd.Categorical(np.where(failed, "failed", "completed")),
        "disposition": pd.Categorical(disposition),
        "duration_ms": pd.array(np.round(np.exp(rng.normal(9, 0.6, n))).astype(np.int64), dtype="Int64"),
        "total_tokens": pd.array(np.round(np.exp(rng.normal(9, 0.5, n))).astype(np.int64), dtype="Int64"),
        "total_cost": np.exp(rng.normal(-4, cost_sigma, n))})


def replicate(seed: int, shift: float, n: int, n_boot: int, **kwargs) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return compare(side(n, 0.20, rng), side(n, 0.20 + shift, rng), n_boot=n_boot, seed=seed, **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=400)
    parser.add_argument("--n-boot", type=int, default=500)
    args = parser.parse_args()
    started = time.perf_counter()
    power = [bool(replicate(k, 0.05, 300, args.n_boot).loc["escalation_rate", "significant"])
             for k in range(args.reps)]
    alone = [bool(replicate(k, 0.05, 300, args.n_boot).loc["escalation_rate", "p_value"] < 0.05)
             for k in range(args.reps)]
    nulls = [replicate(10_000 + k, 0.0, 300, args.n_boot) for k in range(args.reps)]
    fwer = np.mean([bool(t["significant"].any()) for t in nulls])
    # A bootstrap row whose interval excludes 0 while its p-value is >= 0.05 (or the reverse).
    rows = pd.concat([t[t["method"].astype(str).str.startswith("bootstrap")] for t in nulls])
    excludes = (rows["ci_low"] > 0) | (rows["ci_high"] < 0)
    disagree = np.mean(excludes != (rows["p_value"] < 0.05))
    rates = pd.concat([t[t["method"].astype(str).str.startswith("Newcombe")] for t in nulls])
    rate_disagree = np.mean(((rates["ci_low"] > 0) | (rates["ci_high"] < 0)) != (rates["p_value"] < 0.05))
    print(f"| 5-point escalation change, 300 runs a side: significant after Holm | {np.mean(power):.1%} |")
    print(f"| the same, escalation_rate alone (p < 0.05) | {np.mean(alone):.1%} |")
    print(f"| family-wise type I error (nothing changes) | {fwer:.1%} |")
    print(f"| bootstrap rows where the interval and p-value disagree (null) | {disagree:.1%} |")
    print(f"| rate and share rows where the interval and p-value disagree (null) | {rate_disagree:.2%} |")
    print(f"| rate and share rows with p < 0.05 (null) | {np.mean(rates['p_value'] < 0.05):.1%} |")
    print(f"({args.reps} replications, n_boot {args.n_boot}, {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
