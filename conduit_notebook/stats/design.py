"""The trace sample behind a runs frame, in one object: :class:`TraceSample`.

Whether the traces are a random sample, each run's weight, the design's strata as far as the
frame still shows them, how many traced runs an estimate rests on, and Kish's effective sample
size, decided here once for the tables (``tool_stats``, ``tool_paths``, ``tool_transitions``,
``repeated_calls``, ``repeat_rates``, ``compare``), the plots and the widgets.

>>> sample = TraceSample.from_runs(frames.runs)
>>> sample.is_sample, sample.traced, sample.kish_n
(True, 1076, 981.4)
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..sampling import design_groups, domain_ratios_from_sums, domain_totals_from_sums, trace_failures

__all__ = ["CONCENTRATED_SHARE", "FEW_TRACED_RUNS", "FEW_TRACED_RUNS_SLICE", "TraceSample", "concentration",
           "row_flags", "trace_sample"]

#: A row resting on fewer traced runs than this is flagged "few traced runs" ...
FEW_TRACED_RUNS = 10
#: ... and every row of a table whose slice holds fewer traced runs than this.
FEW_TRACED_RUNS_SLICE = 30
#: A row whose 5 busiest traced runs hold more than this share of its calls is flagged
#: "concentrated in few runs" (a clustered tool: the variance from a few runs is unreliable).
CONCENTRATED_SHARE = 0.5


class TraceSample:
    """The random trace sample behind ``runs`` (:meth:`from_runs`).

    - ``is_sample``: the traces are a sample (some ``trace_weight`` above 0 and not every one
      1): trace-based numbers are estimates; else they are counts (every trace there, or none).
    - ``sampled`` (per run): in the random sample, ``trace_weight`` > 0. Runs without a trace
      (NaN) and traces not drawn at random (weight 0: picked by hand, the inspector, another
      draw) are not.
    - ``weight`` (per run): the runs it stands for, 0 outside the random sample.
    - ``traced``: THE number of traced runs an estimate rests on (the random sample); every
      table's ``estimated_from`` and note use it. ``at_hand`` counts every run with a trace.
    - ``kish_n``: Kish's effective sample size ``(sum w)**2 / sum w**2``.
    - ``group``, ``g_weight``, ``g_agent``, ``g_partial``, ``n_h``: the design groups
      (:func:`conduit_notebook.sampling.design_groups`) and their sampled runs.
    """

    def __init__(self, runs: pd.DataFrame) -> None:
        if "trace_weight" in runs:
            w = runs["trace_weight"].to_numpy(dtype=float, na_value=np.nan)
        else:  # no trace budget: every run carries its trace
            w = np.ones(len(runs))
        self.sampled = w > 0  # NaN: not traced; 0: traced, not drawn at random
        self.weight = np.where(self.sampled, w, 0.0)
        self.is_sample = bool(self.sampled.any() and not (w == 1).all())
        self.at_hand = int(np.count_nonzero(~np.isnan(w)))
        self.traced = int(self.sampled.sum())
        total, squares = float(self.weight.sum()), float((self.weight ** 2).sum())
        self.kish_n = total ** 2 / squares if squares else 0.0
        self.group, self.g_weight, self.g_agent, self.g_partial = design_groups(
            runs if "trace_weight" in runs else runs.assign(trace_weight=w))
        self.n_h = np.bincount(self.group[self.sampled], minlength=len(self.g_weight)).astype(float)
        self.note = f"estimated from {self.traced:,} traced runs"
        if self.at_hand > self.traced:
            self.note += (f" ({self.at_hand - self.traced:,} more traces at hand were not drawn at random "
                          "and are left out)")
        failed, _ = trace_failures(runs)
        if failed:  # non-response: the traced runs of their strata stand for them
            self.note += (f"; {failed:,} traces failed, assumed missing at random within agent x "
                          "disposition x status (low if failures go with big traces)")

    @classmethod
    def from_runs(cls, runs: pd.DataFrame) -> TraceSample:
        """The sample design of ``runs`` (a runs frame, with ``trace_weight`` after a fetch)."""
        return cls(runs)

    @property
    def population(self) -> float:
        """The runs the random sample stands for (``sum w``)."""
        return float((self.g_weight * self.n_h).sum())

    def __repr__(self) -> str:
        kind = "random trace sample" if self.is_sample else "every trace"
        return f"TraceSample({kind}: {self.traced:,} traced runs, Kish n {self.kish_n:,.1f})"

    def sums(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_cols: int) -> np.ndarray:
        """Per design group and column (groups x n_cols): the sum of ``values`` of sampled
        ``rows`` (runs) in ``cols``."""
        keep = self.sampled[rows]
        cell = self.group[rows[keep]] * n_cols + cols[keep]
        return np.bincount(cell, weights=np.asarray(values, dtype=float)[keep],
                           minlength=len(self.g_weight) * n_cols).reshape(len(self.g_weight), n_cols)

    def totals(self, s1: np.ndarray, s2: np.ndarray, groups: np.ndarray | slice = slice(None),
               flat: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Horvitz-Thompson totals ``sum w * y`` and their stratified standard errors
        (:func:`conduit_notebook.sampling.domain_totals_from_sums`)."""
        return domain_totals_from_sums(s1[groups], s2[groups], self.n_h[groups], self.g_weight[groups],
                                       self.g_agent[groups], self.g_partial[groups],
                                       flat=None if flat is None else flat[groups])

    def ratios(self, sy: np.ndarray, syy: np.ndarray, sx: np.ndarray, sxx: np.ndarray, sxy: np.ndarray,
               groups: np.ndarray | slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
        """Ratio estimates ``sum w * y / sum w * x`` and their linearised stratified errors."""
        return domain_ratios_from_sums(sy[groups], syy[groups], sx[groups], sxx[groups], sxy[groups],
                                       self.n_h[groups], self.g_weight[groups], self.g_agent[groups],
                                       self.g_partial[groups])

    def unseen_bound(self, confidence: float = 0.95) -> float:
        """The largest share of runs a category absent from the sample could have: the rule of
        three generalised, ``1 - (1 - confidence) ** (1 / n)`` at Kish's effective n (3 / n at
        95%); NaN without a sample."""
        n = self.kish_n
        return 1 - (1 - confidence) ** (1 / n) if n > 0 else math.nan


def trace_sample(runs: pd.DataFrame | None) -> TraceSample | None:
    """The sample design when ``runs``' traces are a sample (:attr:`TraceSample.is_sample`),
    else None: every trace is there and counts are exact."""
    if runs is None or "trace_weight" not in runs:
        return None
    sample = TraceSample.from_runs(runs)
    return sample if sample.is_sample else None


def concentration(row: np.ndarray, count: np.ndarray, n_rows: int, top: int = 5) -> np.ndarray:
    """Per row (tool, path...): the share of its calls held by its ``top`` busiest traced runs,
    from one entry per (row, run) pair: the pair's ``row`` and its ``count`` of calls."""
    out = np.full(n_rows, np.nan)
    order = np.lexsort((-count, row))
    row, count = row[order], count[order]
    starts = np.searchsorted(row, np.arange(n_rows))
    ends = np.searchsorted(row, np.arange(n_rows), side="right")
    for r in range(n_rows):
        part = count[starts[r]:ends[r]]
        if part.sum() > 0:
            out[r] = part[:top].sum() / part.sum()
    return out


def row_flags(traced_runs: np.ndarray, top_share: np.ndarray, slice_traced: int) -> np.ndarray:
    """Per estimated row, why its interval may not hold ("" when nothing is known against it):
    "few traced runs" (the row rests on fewer than :data:`FEW_TRACED_RUNS`, or the slice on
    fewer than :data:`FEW_TRACED_RUNS_SLICE`), "concentrated in few runs" (its 5 busiest runs
    hold more than :data:`CONCENTRATED_SHARE` of its calls), "not seen in the sample"."""
    traced_runs = np.asarray(traced_runs)
    few = (traced_runs < FEW_TRACED_RUNS) | (slice_traced < FEW_TRACED_RUNS_SLICE)
    clustered = np.nan_to_num(np.asarray(top_share, dtype=float)) > CONCENTRATED_SHARE
    flags = [", ".join(f for f, on in (("not seen in the sample", t == 0), ("few traced runs", a and t > 0),
                                       ("concentrated in few runs", c and not (t == 0))) if on)
             for t, a, c in zip(traced_runs, few, clustered, strict=False)]
    return np.array(flags, dtype=object)
