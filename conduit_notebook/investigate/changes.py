"""Change points: on which day a metric's level shifted (:func:`change_points`), and the
per-bucket series with the level of its segment (:func:`metric_levels`)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..analysis import require_columns, require_runs
from ..stats import noise_variance, pelt_segments
from .values import CHANGE_METRICS, QUANTILES, RATES, per_run



def bucket_values(runs: pd.DataFrame, metric: str, freq: str, by: str | None) -> pd.DataFrame:
    """Per group and time bucket: the metric's ``value``, the ``runs`` behind it (its weight)
    and the per-run variance within buckets (``within``)."""
    value, counted = per_run(runs, metric)
    frame = pd.DataFrame({"t": runs["created_at"], "x": np.where(counted, value, np.nan)}, index=runs.index)
    keys: list[Any] = []
    if by is not None:
        frame["g"] = runs[by]
        keys.append("g")
    keys.append(pd.Grouper(key="t", freq=freq, label="left", closed="left"))
    frame = frame[counted & frame["t"].notna().to_numpy()]
    grouped = frame.groupby(keys, observed=True, sort=True)["x"]
    if metric in QUANTILES:
        q = QUANTILES[metric]
        table = pd.DataFrame({"value": grouped.quantile(q), "runs": grouped.count()})
        # A sample quantile's variance is q (1 - q) / (n f(x_q)^2): f from the spacing of the
        # group's quantiles either side of q gives the per-run variance.
        h = min(0.05, (1 - q) / 2, q / 2)
        whole = frame.groupby("g", observed=True)["x"] if by is not None else frame["x"]
        spread = whole.quantile(q + h) - whole.quantile(q - h)
        per_run_variance = q * (1 - q) * (spread / (2 * h)) ** 2
        table["within"] = (per_run_variance.reindex(table.index.get_level_values(0)).to_numpy() if by is not None
                           else float(per_run_variance))
    else:
        table = pd.DataFrame({"value": grouped.mean(), "runs": grouped.count(), "within": grouped.var(ddof=0)})
    return table[table["runs"] > 0].reset_index()


def metric_levels(runs: pd.DataFrame, metric: str = "escalation_rate", *, freq: str = "D",
                  by: str | None = None, penalty: float | None = None, min_size: int = 3) -> pd.DataFrame:
    """The metric per ``freq`` bucket (and ``by`` group): ``at`` (bucket start), ``value``,
    ``runs`` behind it, and ``level``, the mean of the segment :func:`change_points` puts the
    bucket in; ``segment`` numbers the segments. Buckets without runs are left out."""
    require_runs(runs, "metric_levels")
    require_columns(runs, ["created_at", *([by] if by else [])], "metric_levels")
    if metric not in CHANGE_METRICS:
        raise ValueError(f"metric must be one of {', '.join(CHANGE_METRICS)}; got {metric!r}")
    try:
        pd.tseries.frequencies.to_offset(freq)
    except ValueError:
        raise ValueError(f"freq must be a pandas frequency such as 'h', 'D', 'W'; got {freq!r}") from None
    if not isinstance(min_size, int) or min_size < 1:
        raise ValueError(f"min_size must be a whole number >= 1, got {min_size!r}")
    table = bucket_values(runs, metric, freq, by).rename(columns={"t": "at", "g": by} if by else {"t": "at"})
    levels, segments = np.full(len(table), np.nan), np.zeros(len(table), dtype=np.int64)
    groups = table.groupby(by, observed=True, sort=False).indices if by else {None: np.arange(len(table))}
    for rows in groups.values():
        y, w = table["value"].to_numpy()[rows], table["runs"].to_numpy(dtype=float)[rows]
        within = table["within"].fillna(0).to_numpy()[rows]
        beta = 4 * math.log(max(len(y), 2)) if penalty is None else float(penalty)
        rate = float(np.sum(w * y) / np.sum(w)) if metric in RATES else None
        fit, fit_within = y, within
        if metric in QUANTILES and np.all(y > 0):
            # Sample quantiles are right-skewed: segment their logs (a step is then a ratio).
            fit, fit_within = np.log(y), within / (np.sum(w * y) / np.sum(w)) ** 2
        cuts = pelt_segments(fit, w, noise_variance(fit, w, fit_within, rate), beta, min_size, rate)
        bounds = [0, *cuts, len(y)]
        for k, (s, e) in enumerate(zip(bounds[:-1], bounds[1:])):
            levels[rows[s:e]] = np.sum(w[s:e] * y[s:e]) / np.sum(w[s:e])
            segments[rows[s:e]] = k
    table["level"], table["segment"] = levels, segments
    return table.drop(columns="within")


def change_points(runs: pd.DataFrame, metric: str = "escalation_rate", *, freq: str = "D",
                  by: str | None = None, penalty: float | None = None, min_size: int = 3) -> pd.DataFrame:
    """The times where ``metric`` (one of :data:`CHANGE_METRICS`) shifted to another level:
    columns ``at`` (start of the first bucket at the new level), ``before`` and ``after`` (the
    levels of the segments either side), ``change`` (after - before), and ``by``'s group.
    Nothing on a flat series.

    Method: penalised segmentation of the per-``freq`` series of the metric, solved exactly by
    PELT, with a binomial cost for rates and a Gaussian mean-shift cost for the others (on the
    log scale for duration quantiles, which are skewed), all
    weighted by the runs in each bucket; the noise (over-dispersion, for rates) is estimated
    robustly from successive differences (at least the runs' own variance). Each change point
    costs ``penalty`` = 4 log(n buckets): BIC's log n for each of its two parameters (the new
    level and where it starts) doubled, so that only about 2% of flat four-week daily series
    show a change (checked by simulation in the tests). Segments are at least ``min_size``
    buckets long, so a single odd day is not a change.

    >>> change_points(runs, metric="escalation_rate", by="agent_name")
    """
    levels = metric_levels(runs, metric, freq=freq, by=by, penalty=penalty, min_size=min_size)
    starts = levels["segment"].to_numpy() > 0
    starts &= levels["segment"].diff().fillna(0).to_numpy() != 0
    previous = levels["level"].shift(1)
    out = pd.DataFrame({**({by: levels[by]} if by else {}), "at": levels["at"],
                        "before": previous, "after": levels["level"]})[starts]
    out["change"] = out["after"] - out["before"]
    return out.reset_index(drop=True)
