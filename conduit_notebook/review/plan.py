"""Planning a disposition review: how many runs to review in each stratum, and the interval
that should give."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..deprecation import keyword_only_after
from ..stats import wilson_interval, z_value
from ..stats.allocation import neyman_allocation

__all__ = ["DEFAULT_SAMPLE", "MIN_PER_STRATUM", "review_plan"]

#: A review sized by margin reviews at least this many runs of each disposition (or all it has).
MIN_PER_STRATUM = 10
DEFAULT_SAMPLE = 50


@keyword_only_after("runs", moved=("n",))
def review_plan(runs: pd.DataFrame, *, n: int | None = None, margin: float | None = None,
                confidence: float = 0.95, by: str | None = "disposition",
                expected: float | Mapping[str, float] | pd.Series = 0.8,
                expected_agreement: float | None = None, floor: int | None = None) -> pd.DataFrame:
    """How many runs to review in each stratum, and the interval that should give.

    With ``margin`` (e.g. ``0.05`` for ±5 points), the size and allocation are chosen so that the
    overall accuracy's interval is about ±``margin``: **Neyman allocation** (Cochran, *Sampling
    Techniques*, 5.5: ``n_h`` proportional to ``N_h * S_h``, the stratum's size times its standard
    deviation ``sqrt(p_h (1 - p_h))`` at its expected accuracy ``p_h``) bounded by a floor per
    stratum and the stratum's size, and re-solved for the strata left free once some sit at a
    bound (:func:`conduit_notebook.stats.allocation.neyman_allocation`), at the smallest total
    whose expected interval reaches the margin: Wilson's at Kish's effective n with each
    stratum's expected smoothed spread and finite population correction, as
    :func:`~conduit_notebook.stats.stratified_accuracy` will compute it from the verdicts.

    ``floor``: the reviews each stratum gets at least, so that every disposition has its own
    row. By default ``MIN_PER_STRATUM`` (10), lowered with ``margin=`` to the largest floor the
    margin still needs where 10 a stratum alone would already give a tighter interval than asked
    (many small dispositions at a wide margin: 8 at ±10% gave ±7.9% with 80 reviews; now 6 a
    stratum, 50 reviews, ±9.8%); ``plan.attrs["floor_note"]`` then says so. Pass ``floor=10`` to
    keep 10 a stratum: the note then says what it costs (the margin reached, the reviews it takes
    against those the margin needs). With ``n``, each stratum gets the same number (all of a
    smaller one), which favours the per-disposition rows over the overall figure.

    ``expected`` is the accuracy the plan assumes: one number for every stratum, or one per
    stratum (a dict or a Series by disposition, e.g. from a pilot:
    ``review_report(pilot, runs)["accuracy"]["accuracy"]``; a stratum it does not name is planned
    at 0.5, the worst case). With one number every stratum has the same ``S_h`` and Neyman is
    **proportional allocation**, which over-reviews when the dispositions' accuracies differ
    (``margin=0.05`` at the default 0.8 gave about ±3.5 points on a population of 95%/80%/70%
    dispositions); with a pilot's accuracies it delivers the margin asked: 0.93-1.00 of it in
    benchmarks/sim_review_plan.py (margins 0.03-0.1, five populations incl. many small strata
    and a rare disposition; docs/reviews.md). A
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
    ``plan.attrs`` holds ``margin``, ``confidence``, ``design`` (the allocation and the floor used)
    and ``floor_note``.
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
    if floor is not None and (not isinstance(floor, int) or isinstance(floor, bool) or floor < 1):
        raise ValueError(f"floor must be a whole number of reviews per stratum >= 1 (e.g. 10), got {floor!r}")
    note = None
    if margin is not None:
        chosen = _floor_for_margin(population, margin, z, accuracy) if floor is None else floor
        sample = _allocation_for_margin(population, margin, z, accuracy, chosen)
        design = (("Neyman allocation at each stratum's expected accuracy" if per_stratum else
                   f"proportional allocation (Neyman at one expected accuracy, {float(accuracy[0]):.0%})" if len(accuracy)
                   else "no runs")
                  + f", a floor of {chosen}, sized for ±{margin:.1%}"
                  + (f" with a judge agreeing {expected_agreement:.0%} of the time" if expected_agreement else ""))
        note = _floor_note(population, margin, z, accuracy, sample, chosen, floor)
    else:
        assert n is not None  # DEFAULT_SAMPLE when neither n nor margin is given
        sample = _equal_allocation(population, n)
        design = f"equal allocation of {n} runs"
    spread = _smoothed_spread(accuracy, sample, population)
    with np.errstate(divide="ignore", invalid="ignore"):
        each = np.where(sample > 0, z * np.sqrt((1 - sample / population) * spread / sample), np.nan)
    overall = _planned_half_width(population, sample, z, accuracy)
    plan = pd.DataFrame({"population": population.astype("int64"), "weight": population / max(population.sum(), 1),
                         "sample": sample.astype("int64"), "expected_half_width": each}, index=sizes.index)
    plan.loc["(all)"] = [int(population.sum()), 1.0, int(sample.sum()), overall]
    plan = plan.astype({"population": "int64", "sample": "int64"})
    plan.index.name = by or "stratum"
    plan["expected_accuracy"] = np.append(accuracy, np.nan)
    plan.attrs.update(margin=margin, confidence=confidence, design=design, by=by, floor_note=note)
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


def _smoothed_spread(accuracy: np.ndarray, sample: np.ndarray, population: np.ndarray | None = None) -> np.ndarray:
    """The expected p~ (1 - p~) at the smoothed accuracy p~ = (x + 0.5) / (n + 1) the interval
    uses (stratified_accuracy), so that a stratum expected all right still counts: at the mean
    m = (p n + 0.5) / (n + 1), less the variance of p~ over the draws of n runs of the stratum
    (hypergeometric: n p (1 - p) / (n + 1)^2 times (N - n) / (N - 1)), which the plan would
    otherwise count as spread and over-review small strata."""
    n = np.asarray(sample, dtype="float64")
    mean = (accuracy * n + 0.5) / (n + 1)
    fpc = 1.0 if population is None else np.clip((population - n) / np.maximum(population - 1, 1), 0.0, 1.0)
    return mean * (1 - mean) - fpc * n * accuracy * (1 - accuracy) / (n + 1) ** 2


def _planned_half_width(population: np.ndarray, sample: np.ndarray, z: float, accuracy: np.ndarray) -> float:
    """The half-width the review's interval is expected to have: Wilson's at Kish's effective
    n = p~ (1 - p~) / variance, as stratified_accuracy computes it, with each stratum's
    expected spread (:func:`_smoothed_spread`)."""
    if population.sum() <= 0:
        return math.nan
    w = population / population.sum()
    if np.any((sample == 0) & (population > 0)):
        return math.inf
    spread = _smoothed_spread(accuracy, sample, population)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(sample > 0, w**2 * (1 - sample / population) * spread / sample, 0.0)
    variance = float(terms.sum())
    if variance <= 0:
        return 0.0
    smoothed = (accuracy * sample + 0.5) / (sample + 1)
    p = float((w * np.where(sample > 0, smoothed, accuracy)).sum())
    effective = p * (1 - p) / variance
    low, high = wilson_interval(float((w * accuracy).sum()) * effective, effective, z)
    return (high - low) / 2


def _allocation_for_margin(population: np.ndarray, margin: float, z: float, accuracy: np.ndarray,
                           floor: int) -> np.ndarray:
    """The smallest whole allocation whose planned interval reaches ``margin``: Neyman within the
    floors and sizes (:func:`~conduit_notebook.stats.neyman_allocation`), rounded up."""
    # A stratum expected all right still has a spread (and still gets its floor).
    deviation = np.sqrt(np.clip(accuracy * (1 - accuracy), 1e-4, None))

    def allocate(total: int) -> np.ndarray:
        return np.minimum(population, np.ceil(neyman_allocation(total, population, deviation, floor) - 1e-9))

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


def _floor_note(population: np.ndarray, margin: float, z: float, accuracy: np.ndarray, sample: np.ndarray,
                chosen: int, asked: int | None) -> str | None:
    """What the floor costs or gave up, for ``plan.attrs["floor_note"]`` (None when it did neither)."""
    reached = _planned_half_width(population, sample, z, accuracy)
    if asked is None and chosen < MIN_PER_STRATUM:
        return (f"{chosen} reviews per stratum (not {MIN_PER_STRATUM}): {MIN_PER_STRATUM} in each of "
                f"{len(population)} strata alone would give ±{_planned_half_width(population, np.minimum(population, MIN_PER_STRATUM), z, accuracy):.1%}, "
                f"tighter than the ±{margin:.1%} asked; pass floor={MIN_PER_STRATUM} to keep {MIN_PER_STRATUM} a stratum")
    if asked is not None and reached < 0.8 * margin:
        needed = _allocation_for_margin(population, margin, z, accuracy, _floor_for_margin(population, margin, z, accuracy))
        return (f"the floor of {asked} a stratum gives ±{reached:.1%} where ±{margin:.1%} was asked: "
                f"{int(sample.sum())} reviews where {int(needed.sum())} would reach the margin")
    return None


def _floor_for_margin(population: np.ndarray, margin: float, z: float, accuracy: np.ndarray) -> int:
    """The largest floor up to :data:`MIN_PER_STRATUM` whose floors alone do not already reach
    ``margin`` (more would review more than the margin needs), at least 1."""
    for floor in range(MIN_PER_STRATUM, 1, -1):
        if _planned_half_width(population, np.minimum(population, floor), z, accuracy) > margin:
            return floor
    return 1


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

