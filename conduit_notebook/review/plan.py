"""Planning a disposition review: how many runs to review in each stratum, and the interval
that should give."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..stats import z_value

__all__ = ["DEFAULT_SAMPLE", "MIN_PER_STRATUM", "review_plan"]

#: A review sized by margin reviews at least this many runs of each disposition (or all it has).
MIN_PER_STRATUM = 10
DEFAULT_SAMPLE = 50


def review_plan(runs: pd.DataFrame, n: int | None = None, *, margin: float | None = None,
                confidence: float = 0.95, by: str | None = "disposition",
                expected: float | Mapping[str, float] | pd.Series = 0.8,
                expected_agreement: float | None = None) -> pd.DataFrame:
    """How many runs to review in each stratum, and the interval that should give.

    With ``margin`` (e.g. ``0.05`` for ±5 points), the size and allocation are chosen so that the
    overall accuracy's interval is about ±``margin``: **Neyman allocation** (Cochran, *Sampling
    Techniques*, 5.5: ``n_h`` proportional to ``N_h * S_h``, the stratum's size times its standard
    deviation ``sqrt(p_h (1 - p_h))`` at its expected accuracy ``p_h``) with a floor of
    ``MIN_PER_STRATUM`` runs per stratum so that every disposition gets its own row, and the
    smallest total whose planned interval reaches the margin (finite population correction
    included; the variance at the smoothed accuracy the interval uses, see
    :func:`~conduit_notebook.stats.stratified_accuracy`). With ``n``, each stratum gets the same
    number (all of a smaller one), which favours the per-disposition rows over the overall figure.

    ``expected`` is the accuracy the plan assumes: one number for every stratum, or one per
    stratum (a dict or a Series by disposition, e.g. from a pilot:
    ``review_report(pilot, runs)["accuracy"]["accuracy"]``; a stratum it does not name is planned
    at 0.5, the worst case). With one number every stratum has the same ``S_h`` and Neyman is
    **proportional allocation**, which over-reviews when the dispositions' accuracies differ
    (``margin=0.05`` at the default 0.8 gave about ±3.5 points on a population of 95%/80%/70%
    dispositions); with a pilot's accuracies it delivers about the margin asked: 0.84-0.99 of it in
    benchmarks/sim_review_plan.py (margins 0.03-0.1, four populations; docs/reviews.md), less only
    where the floor of 10 a stratum is already more than the margin needs (8 dispositions at ±10%:
    0.79). A
    wrong guess never gives a wrong interval: the interval comes from the verdicts, and
    ``DispositionReview`` shows it live against the target, so a lower accuracy costs a few more
    reviews and a higher one lets you stop early.

    ``expected_agreement``: with a judge on every run (``review_report(predictions=)``), how
    often it agrees with people (from a pilot, or stated): the plan then needs fewer reviews for
    the same margin. The variance it assumes is the human one times ``1 - 0.5 (2a - 1)^2``, a factor
    calibrated on benchmarks/sim_judge.py (the method's variance is 0.55 of the human one at
    a = 0.95 and 120 reviews, not the asymptotic 1 - (2a - 1)^2 = 0.19).

    One row per stratum and an "(all)" row: ``population``, ``weight`` (share of the population),
    ``sample`` and ``expected_half_width`` (the interval's half-width if accuracy is ``expected``).
    ``plan.attrs`` holds ``margin``, ``confidence`` and ``design``.
    """
    if n is not None and margin is not None:
        raise ValueError("pass n (a sample size) or margin (a target half-width such as 0.05), not both")
    if n is None and margin is None:
        n = DEFAULT_SAMPLE
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise ValueError(f"n must be a whole number >= 1, got {n!r}")
    if margin is not None and (not isinstance(margin, (int, float)) or isinstance(margin, bool) or not 0 < margin < 0.5):
        raise ValueError(f"margin must be a half-width between 0 and 0.5 (e.g. 0.05 for ±5 points), got {margin!r}")
    z = z_value(confidence)
    sizes = _stratum_sizes(runs, by)
    accuracy = _expected_accuracy(expected, sizes.index)
    per_stratum = not isinstance(expected, (int, float))
    if expected_agreement is not None:
        if not isinstance(expected_agreement, (int, float)) or not 0.5 <= expected_agreement <= 1:
            raise ValueError(f"expected_agreement must be the share of runs a judge agrees with people on, "
                             f"between 0.5 and 1; got {expected_agreement!r}")
        # The same plan for a smaller spread: the accuracy whose p(1 - p) is the judge-assisted one.
        factor = 1 - 0.5 * (2 * expected_agreement - 1) ** 2
        accuracy = (1 + np.sqrt(1 - 4 * factor * accuracy * (1 - accuracy))) / 2
    population = sizes.to_numpy(dtype="float64")
    if margin is not None:
        sample = _allocation_for_margin(population, margin, z, accuracy)
        design = (("Neyman allocation at each stratum's expected accuracy" if per_stratum else
                   f"proportional allocation (Neyman at one expected accuracy, {float(accuracy[0]):.0%})" if len(accuracy)
                   else "no runs")
                  + f", a floor of {MIN_PER_STRATUM}, sized for ±{margin:.1%}"
                  + (f" with a judge agreeing {expected_agreement:.0%} of the time" if expected_agreement else ""))
    else:
        assert n is not None  # DEFAULT_SAMPLE when neither n nor margin is given
        sample = _equal_allocation(population, n)
        design = f"equal allocation of {n} runs"
    spread = _smoothed_spread(accuracy, sample)
    with np.errstate(divide="ignore", invalid="ignore"):
        each = np.where(sample > 0, z * np.sqrt((1 - sample / population) * spread / sample), np.nan)
    overall = _planned_half_width(population, sample, z, accuracy)
    plan = pd.DataFrame({"population": population.astype("int64"), "weight": population / max(population.sum(), 1),
                         "sample": sample.astype("int64"), "expected_half_width": each}, index=sizes.index)
    plan.loc["(all)"] = [int(population.sum()), 1.0, int(sample.sum()), overall]
    plan = plan.astype({"population": "int64", "sample": "int64"})
    plan.index.name = by or "stratum"
    plan["expected_accuracy"] = np.append(accuracy, np.nan)
    plan.attrs.update(margin=margin, confidence=confidence, design=design, by=by)
    return plan


def _stratum_sizes(runs: pd.DataFrame, by: str | None) -> pd.Series:
    if by is None:
        sizes = pd.Series({"(all runs)": len(runs)}, dtype="int64")
    else:
        if by not in runs:
            raise ValueError(f"review_plan needs the column {by}; pass the runs frame from fetch_runs() or runs_frame()")
        sizes = runs[by].value_counts(dropna=True).astype("int64")
        sizes = sizes[sizes > 0]
        sizes.index = sizes.index.astype(str)
        sizes = sizes.sort_index()
    return sizes


def _expected_accuracy(expected: object, strata: pd.Index) -> np.ndarray:
    """The planning accuracy of each stratum: one number for all, or a mapping by stratum (0.5,
    the worst case, for a stratum it does not name)."""
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        if not 0 < expected < 1:
            raise ValueError(f"expected must be an anticipated accuracy between 0 and 1, got {expected!r}")
        return np.full(len(strata), float(expected))
    if not isinstance(expected, (Mapping, pd.Series)):
        raise ValueError("expected must be an anticipated accuracy between 0 and 1, or one per stratum (a dict or "
                         f"Series by disposition, e.g. a pilot's review_report accuracy column); got {expected!r}")
    given = pd.Series(dict(expected) if isinstance(expected, Mapping) else expected, dtype="float64")
    given.index = given.index.astype(str)
    bad = given[(given < 0) | (given > 1)]
    if len(bad):
        raise ValueError(f"expected accuracies must be between 0 and 1; got {bad.to_dict()}")
    return given[~given.index.duplicated()].reindex(strata.astype(str)).fillna(0.5).to_numpy(dtype="float64")


def _smoothed_spread(accuracy: np.ndarray, sample: np.ndarray) -> np.ndarray:
    """p~ (1 - p~) at the smoothed accuracy p~ = (p n + 0.5) / (n + 1) the interval uses, so that a
    stratum expected all right still counts (stratified_accuracy)."""
    smoothed = (accuracy * sample + 0.5) / (sample + 1)
    return smoothed * (1 - smoothed)


def _planned_half_width(population: np.ndarray, sample: np.ndarray, z: float, accuracy: np.ndarray) -> float:
    if population.sum() <= 0:
        return math.nan
    w = population / population.sum()
    if np.any((sample == 0) & (population > 0)):
        return math.inf
    spread = _smoothed_spread(accuracy, sample)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(sample > 0, w**2 * (1 - sample / population) * spread / sample, 0.0)
    return float(z * math.sqrt(terms.sum()))


def _allocation_for_margin(population: np.ndarray, margin: float, z: float, accuracy: np.ndarray) -> np.ndarray:
    floor = np.minimum(population, MIN_PER_STRATUM)
    # Neyman: n_h proportional to N_h * S_h (a stratum expected all right still gets its floor).
    deviation = np.sqrt(np.clip(accuracy * (1 - accuracy), 1e-4, None))
    share_of = population * deviation / max(float((population * deviation).sum()), 1e-12)

    def allocate(total: int) -> np.ndarray:
        return np.minimum(population, np.maximum(floor, np.ceil(total * share_of)))

    low, high = 1, int(population.sum())
    if high == 0:
        return np.zeros_like(population)
    while low < high:  # the smallest total whose interval reaches the margin
        middle = (low + high) // 2
        if _planned_half_width(population, allocate(middle), z, accuracy) <= margin:
            high = middle
        else:
            low = middle + 1
    return allocate(low)


def _equal_allocation(population: np.ndarray, n: int) -> np.ndarray:
    quota = np.zeros_like(population)
    left = int(min(n, population.sum()))
    while left > 0:
        open_ = np.flatnonzero(quota < population)
        each = max(1, left // len(open_))
        for k in open_:
            take = int(min(each, population[k] - quota[k], left))
            quota[k] += take
            left -= take
            if left == 0:
                break
    return quota

