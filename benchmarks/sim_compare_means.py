"""compare's means by simulation: coverage of the difference of two sides' mean cost per run
and type I error, for the percentile bootstrap compare used before, and from one set of
resamples the percentile, the studentized (bootstrap-t) and their hull (what compare shows
now), on normal, skewed and heavy-tailed costs, small and large sides.

    python benchmarks/sim_compare_means.py [--reps 400] [--n-boot 500]

Side a draws ``n`` runs' costs from a distribution, side b the same scaled by 1.2 (a 20% rise,
so that the two sides' skewness does not cancel as it would under no change); the truth is 0.2
times the distribution's mean. The type I error comes from a second pair drawn from one
distribution. The intervals come from the functions compare calls (``ratio_draws`` then a
percentile interval, as before; ``ratio_t_draws`` then ``percentile_interval`` and
``studentized_interval``). A row is counted as flagged when compare says "not to be trusted"
(the top 5 runs of a side hold more than half of its total). Figures in docs/compare.md and
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conduit_notebook.stats import percentile_interval, ratio_draws, ratio_t_draws, studentized_interval  # noqa: E402

#: name: (draw n costs, the distribution's mean)
DISTRIBUTIONS = {
    "normal (mean 1, sd 0.3)": (lambda rng, n: rng.normal(1.0, 0.3, n), 1.0),
    "skewed: gamma shape 2": (lambda rng, n: rng.gamma(2.0, 0.5, n), 1.0),
    "log-normal sigma 1": (lambda rng, n: np.exp(rng.normal(0, 1.0, n)), float(np.exp(0.5))),
    "log-normal sigma 2": (lambda rng, n: np.exp(rng.normal(0, 2.0, n)), float(np.exp(2.0))),
    "Pareto tail 2.5": (lambda rng, n: rng.pareto(2.5, n) + 1, 2.5 / 1.5),
    "Pareto tail 1.5 (infinite variance)": (lambda rng, n: rng.pareto(1.5, n) + 1, 1.5 / 0.5),
}
SIZES = (30, 200, 2000)


def dominated(x: np.ndarray) -> bool:
    """compare's note: the top 5 runs hold more than half of the side's total."""
    return float(np.sort(x)[-5:].sum()) > 0.5 * float(x.sum())


def intervals(a: np.ndarray, b: np.ndarray, n_boot: int, rng: np.random.Generator, confidence: float = 0.95
              ) -> dict[str, tuple[float, float, float]]:
    """(low, high, p) of b's mean - a's: the percentile interval of main before this change
    (``ratio_draws``), and from one set of resamples (``ratio_t_draws``) the percentile, the
    studentized and the hull of the two (what compare now shows)."""
    ones = np.ones(len(a))
    _, da = ratio_draws([a], [ones], n_boot, rng)
    _, db = ratio_draws([b], [ones], n_boot, rng)
    diff = db[0] - da[0]
    low, high = np.percentile(diff, [50 * (1 - confidence), 100 - 50 * (1 - confidence)])
    out = {"before": (float(low), float(high), 2 * min(np.mean(diff <= 0), np.mean(diff >= 0)))}
    ea, sa, va, ta = ratio_t_draws([a], [ones], n_boot, rng)
    eb, sb, vb, tb = ratio_t_draws([b], [ones], n_boot, rng)
    estimate, se = float(eb[0] - ea[0]), float(np.hypot(sa[0], sb[0]))
    out["percentile"] = percentile_interval(estimate, estimate + vb[0] - va[0], confidence)
    out["studentized"] = studentized_interval(estimate, se, (vb[0] - va[0]) / np.sqrt(ta[0] ** 2 + tb[0] ** 2), confidence)
    out["hull"] = (min(out["percentile"][0], out["studentized"][0]), max(out["percentile"][1], out["studentized"][1]),
                   max(out["percentile"][2], out["studentized"][2]))
    return out


METHODS = ("before", "percentile", "studentized", "hull")


def replicate(draw, mean: float, n: int, seed: int, n_boot: int) -> list[bool]:
    """Per method: covers the truth (b 20% above a); rejects a null pair (p < 0.05); and whether
    compare flags the rows (a few runs dominate)."""
    rng = np.random.default_rng(seed)
    a, b = draw(rng, n), 1.2 * draw(rng, n)
    shifted = intervals(a, b, n_boot, rng)
    null = intervals(draw(rng, n), draw(rng, n), n_boot, rng)
    truth = 0.2 * mean
    return ([shifted[m][0] <= truth <= shifted[m][1] for m in METHODS] + [null[m][2] < 0.05 for m in METHODS]
            + [dominated(a) or dominated(b)])


def table(reps: int, n_boot: int, sizes=SIZES, distributions=DISTRIBUTIONS) -> list[dict]:
    out = []
    for name, (draw, mean) in distributions.items():
        for n in sizes:
            r = np.array([replicate(draw, mean, n, 1_000 * n + k, n_boot) for k in range(reps)])
            flagged = r[:, -1]
            row = {"distribution": name, "n": n, "flagged": flagged.mean(),
                   "hull, unflagged": float(r[~flagged, 3].mean()) if (~flagged).any() else float("nan")}
            row.update({f"cover {m}": r[:, i].mean() for i, m in enumerate(METHODS)})
            row.update({f"type I {m}": r[:, 4 + i].mean() for i, m in enumerate(METHODS)})
            out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=400)
    parser.add_argument("--n-boot", type=int, default=500)
    args = parser.parse_args()
    started = time.perf_counter()
    print("| distribution | runs a side | covers: " + " | ".join(METHODS) + " | type I: " + " | ".join(METHODS)
          + " | flagged | hull covers, unflagged |")
    print("|---|---:|" + "---:|" * (2 * len(METHODS) + 2))
    for row in table(args.reps, args.n_boot):
        cells = [f"{row['cover ' + m]:.1%}" for m in METHODS] + [f"{row['type I ' + m]:.1%}" for m in METHODS]
        print(f"| {row['distribution']} | {row['n']:,} | " + " | ".join(cells)
              + f" | {row['flagged']:.1%} | {row['hull, unflagged']:.1%} |", flush=True)
    print(f"({args.reps} replications, n_boot {args.n_boot}, {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
