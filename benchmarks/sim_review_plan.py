"""Does review_plan(margin=) deliver the margin asked? (issue 24, item 7)

Five populations of 10,000 runs with known per-disposition accuracies; for margins 0.03, 0.05
and 0.1, the plan with one expected accuracy (0.8: proportional allocation, the only plan before)
against the plan with each disposition's accuracy (as a pilot would give it: Neyman allocation).
Each plan's sample is drawn (hypergeometric per stratum) ``REPS`` times and the overall accuracy
estimated with stratified_accuracy, as review_report does: mean half-width / margin, bias and
coverage of the 95% interval. Before/after: run it with ``PYTHONPATH`` on a checkout of each. Run: ``nice -n 10 python benchmarks/sim_review_plan.py [reps]``.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

from conduit_notebook.review import review_plan, stratified_accuracy

REPS = 2000
#: name: (shares of the dispositions, their accuracies)
POPULATIONS = {
    "demo-like": ([0.60, 0.21, 0.12, 0.035, 0.025, 0.01], [0.95, 0.80, 0.70, 0.60, 0.55, 0.50]),
    "uniform 85%": ([0.5, 0.3, 0.2], [0.85, 0.85, 0.85]),
    "one weak stratum": ([0.7, 0.2, 0.1], [0.98, 0.9, 0.4]),
    "many small": ([0.4, 0.2, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05], [0.97, 0.9, 0.8, 0.7, 0.95, 0.6, 0.99, 0.5]),
    "rare disposition": ([0.85, 0.1, 0.04, 0.008, 0.002], [0.95, 0.85, 0.7, 0.5, 0.3]),
}


def simulate(reps: int, populations: dict | None = None, margins: tuple[float, ...] = (0.03, 0.05, 0.1),
             size: int = 10_000, seed: int = 7) -> pd.DataFrame:
    rows = []
    for name, (shares, accuracy) in (populations or POPULATIONS).items():
        rng = np.random.default_rng(1)
        names = [f"d{i}" for i in range(len(shares))]
        sizes = np.maximum(1, np.round(np.array(shares) * size)).astype(int)
        runs = pd.DataFrame({"disposition": np.repeat(names, sizes)})
        right = np.array([(rng.random(s) < a).sum() for s, a in zip(sizes, accuracy, strict=False)])
        truth = right.sum() / sizes.sum()
        pilot = dict(zip(names, right / sizes, strict=False))
        for margin in margins:
            for plan_name, expected in (("one accuracy (0.8): proportional", 0.8), ("per disposition: Neyman", pilot)):
                try:
                    plan = review_plan(runs, margin=margin, expected=expected).drop("(all)")
                except ValueError:  # before issue 24 item 7, expected took one number only
                    continue
                n = plan["sample"].reindex(names).to_numpy()
                draws = np.random.default_rng(seed)
                half, estimate, covered = [], [], 0
                for _ in range(reps):
                    correct = draws.hypergeometric(right, sizes - right, n)
                    result = stratified_accuracy(correct, n, sizes)
                    half.append(result["half_width"])
                    estimate.append(result["estimate"])
                    covered += result["ci_low"] <= truth <= result["ci_high"]
                floor = plan.attrs["design"].split("a floor of ")[1].split(",")[0] if "floor of" in plan.attrs["design"] else ""
                rows.append({"population": name, "margin": margin, "plan": plan_name, "reviews": int(n.sum()),
                             "floor": floor,
                             "half_width": float(np.mean(half)), "ratio": float(np.mean(half)) / margin,
                             "bias": float(np.mean(estimate)) - truth, "coverage": covered / reps})
    return pd.DataFrame(rows)


if __name__ == "__main__":
    started = time.perf_counter()
    table = simulate(int(sys.argv[1]) if len(sys.argv) > 1 else REPS)
    pd.set_option("display.width", 200)
    print(table.round(4).to_string(index=False))
    print(f"{time.perf_counter() - started:.1f} s")
