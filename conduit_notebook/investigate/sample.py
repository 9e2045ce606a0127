"""The random trace sample behind a runs frame, as the investigations use it (moved here from
investigate.py unchanged; the package's one sample-design object replaces it)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..sampling import design_groups, domain_ratios_from_sums, domain_totals_from_sums, trace_failures


class Sample:
    """The random trace sample behind ``runs`` (``trace_weight`` > 0), as far as the frame still
    shows its design (:func:`conduit_notebook.sampling.design_groups`)."""

    def __init__(self, runs: pd.DataFrame) -> None:
        w = runs["trace_weight"].to_numpy(dtype=float, na_value=np.nan)
        self.sampled = w > 0  # NaN: not traced; 0: traced by hand, not drawn at random
        self.weight = np.where(self.sampled, w, 0.0)
        self.group, self.g_weight, self.g_agent, self.g_partial = design_groups(runs)
        self.n_h = np.bincount(self.group[self.sampled], minlength=len(self.g_weight)).astype(float)
        self.traced = int(self.sampled.sum())
        self.note = f"estimated from {self.traced:,} traced runs"
        failed, _ = trace_failures(runs)
        if failed:  # non-response: the traced runs of their strata stand for them
            self.note += (f"; {failed:,} traces failed, assumed missing at random within agent x "
                          "disposition x status (low if failures go with big traces)")

    def sums(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_cols: int) -> np.ndarray:
        """Per design group and column (groups x n_cols): the sum of ``values`` of sampled
        ``rows`` (runs) in ``cols``."""
        keep = self.sampled[rows]
        cell = self.group[rows[keep]] * n_cols + cols[keep]
        return np.bincount(cell, weights=np.asarray(values, dtype=float)[keep],
                           minlength=len(self.g_weight) * n_cols).reshape(len(self.g_weight), n_cols)

    def totals(self, s1: np.ndarray, s2: np.ndarray, groups: np.ndarray | slice = slice(None)
               ) -> tuple[np.ndarray, np.ndarray]:
        """Horvitz-Thompson totals ``sum w * y`` and their stratified standard errors."""
        return domain_totals_from_sums(s1[groups], s2[groups], self.n_h[groups], self.g_weight[groups],
                                       self.g_agent[groups], self.g_partial[groups])

    def ratios(self, sy: np.ndarray, syy: np.ndarray, sx: np.ndarray, sxx: np.ndarray, sxy: np.ndarray,
               groups: np.ndarray | slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
        """Ratio estimates ``sum w * y / sum w * x`` and their linearised stratified errors."""
        return domain_ratios_from_sums(sy[groups], syy[groups], sx[groups], sxx[groups], sxy[groups],
                                       self.n_h[groups], self.g_weight[groups], self.g_agent[groups],
                                       self.g_partial[groups])


def trace_sample(runs: pd.DataFrame | None) -> Sample | None:
    """The sample design when ``runs``' traces are a sample (as :func:`tool_stats` decides: some
    ``trace_weight`` other than 1), else None: every trace is there and counts are exact."""
    if runs is None or "trace_weight" not in runs:
        return None
    w = runs["trace_weight"].to_numpy(dtype=float, na_value=np.nan)
    if not (w > 0).any() or (w == 1).all():
        return None
    return Sample(runs)