"""change_points by simulation: false alarms on series without a level shift and the detection
rate of real steps, through the public API (runs frames in, change table out).

    python benchmarks/sim_changes.py [--reps 400] [--seed 0]

Each scenario is 28 daily buckets; escalation scenarios run ~200 runs a day at a 20% rate,
cost scenarios draw each run's cost log-normal with sigma 2 (a heavy tail: the top 1% of runs
hold ~30% of the cost). A false alarm is any row on a scenario without a shift (on a drift,
where a trend row is right, a step row); a step is detected as a step when a step row lies
within 2 days of it, in its direction, and found as a change when a step or trend row does. Figures are in
docs/changes.md and benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conduit_notebook import change_points  # noqa: E402

DAYS = 28
START = pd.Timestamp("2026-10-01", tz="UTC")
STEP_DAY = 14


def _rate_day(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per day: runs and escalation probability for an escalation scenario."""
    day = np.arange(DAYS)
    runs = np.full(DAYS, 200)
    p = np.full(DAYS, 0.20)
    if kind == "weekly mix":  # weekends: fewer runs, harder guests
        weekend = day % 7 >= 5
        runs, p = np.where(weekend, 110, 220), np.where(weekend, 0.27, 0.18)
    elif kind == "overdispersed":  # day-to-day variation beyond the binomial (sd 3 points)
        p = np.clip(rng.normal(0.20, 0.03, DAYS), 0.01, 0.99)
    elif kind == "volume swings":  # 40 to 1,000 runs a day, and overdispersed
        runs = np.maximum(np.round(200 * np.exp(rng.normal(0, 0.8, DAYS))).astype(int), 20)
        p = np.clip(rng.normal(0.20, 0.03, DAYS), 0.01, 0.99)
    elif kind == "slow trend":  # 18% to 22% over four weeks, no step
        p = np.linspace(0.18, 0.22, DAYS)
    elif kind == "faster trend":  # 16% to 24% over four weeks, no step
        p = np.linspace(0.16, 0.24, DAYS)
    elif kind == "one outlier day":
        p[STEP_DAY] = 0.45
    elif kind == "two outlier days":
        p[STEP_DAY:STEP_DAY + 2] = 0.45
    elif kind.startswith("step +"):
        p[STEP_DAY:] += int(kind.split("+")[1].split()[0]) / 100
    return runs, p


def scenario_runs(kind: str, seed: int) -> pd.DataFrame:
    """One replication of scenario ``kind`` as a runs frame."""
    rng = np.random.default_rng(seed)
    if kind.startswith("cost"):
        runs, scale = np.full(DAYS, 200), np.ones(DAYS)
        if kind == "cost step +20%":
            scale[STEP_DAY:] = 1.2
        if kind == "cost, one outlier day":
            scale[STEP_DAY] = 4.0
        day = np.repeat(np.arange(DAYS), runs)
        cost = 0.01 * scale[day] * np.exp(rng.normal(0, 2.0, len(day)))
        escalated = np.zeros(len(day), dtype=bool)
    else:
        runs, p = _rate_day(kind, rng)
        day = np.repeat(np.arange(DAYS), runs)
        escalated = rng.random(len(day)) < p[day]
        cost = np.full(len(day), 0.01)
    created = START + pd.to_timedelta(day * 86400 + rng.uniform(0, 86400, len(day)), unit="s")
    return pd.DataFrame({
        "status": pd.Categorical(np.full(len(day), "completed")),
        "disposition": pd.Categorical(np.where(escalated, "escalated", "resolved")),
        "created_at": created, "total_cost": cost,
        "duration_ms": pd.array(np.full(len(day), 1000), dtype="Int64"),
        "total_tokens": pd.array(np.full(len(day), 1000), dtype="Int64")})


NULL_SCENARIOS = ("flat", "weekly mix", "overdispersed", "volume swings", "slow trend", "faster trend",
                  "one outlier day", "two outlier days", "cost flat", "cost, one outlier day")
TREND_SCENARIOS = ("slow trend", "faster trend")
STEP_SCENARIOS = {"step +2 points": 1, "step +5 points": 1, "step +10 points": 1, "cost step +20%": 1}


def outcomes(kind: str, seed: int, **kwargs) -> tuple[bool, bool]:
    """(a step row, a trend row) that counts: on a no-shift scenario any such row (a false alarm;
    on a drift, a trend row is right and only a step row is one); on a step scenario a step row
    within 2 days of the step, upwards, and a trend row starting by then, upwards."""
    metric = "cost_per_run" if kind.startswith("cost") else "escalation_rate"
    found = change_points(scenario_runs(kind, seed), metric=metric, **kwargs)
    step, trend = found[found["kind"] == "step"], found[found["kind"] == "trend"]
    if kind not in STEP_SCENARIOS:
        return not step.empty, not trend.empty
    days = (found["at"] - START) / pd.Timedelta(days=1)
    near = (abs(days - STEP_DAY) <= 2) & (found["change"] > 0) & (found["kind"] == "step")
    drifting = (days <= STEP_DAY + 2) & (found["change"] > 0) & (found["kind"] == "trend")
    return bool(near.any()), bool(drifting.any())


def rates(kind: str, reps: int, seed: int = 0, **kwargs) -> tuple[float, float, float]:
    """Over ``reps`` series: the share with a step row, with a trend row, and with either."""
    seen = np.array([outcomes(kind, seed * 100_000 + k, **kwargs) for k in range(reps)])
    return float(seen[:, 0].mean()), float(seen[:, 1].mean()), float(seen.any(axis=1).mean())


def rate(kind: str, reps: int, seed: int = 0, **kwargs) -> float:
    """The headline figure: a no-shift scenario's false alarms (any row; on a drift, step rows)
    or a step scenario's detection as a step."""
    step, _, either = rates(kind, reps, seed, **kwargs)
    return either if kind not in STEP_SCENARIOS and kind not in TREND_SCENARIOS else step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"| scenario | step rows | trend rows | either ({args.reps} series) |")
    print("|---|---:|---:|---:|")
    for kind in (*NULL_SCENARIOS, *STEP_SCENARIOS):
        step, trend, either = rates(kind, args.reps, args.seed)
        print(f"| {kind} | {step:.1%} | {trend:.1%} | {either:.1%} |", flush=True)
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
