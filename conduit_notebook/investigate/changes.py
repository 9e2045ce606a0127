"""Change points: on which day a metric's level shifted (:func:`change_points`), and the
per-bucket series with the level of its segment (:func:`metric_levels`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..analysis import require_columns, require_runs
from ..stats import default_penalty, robust_segments
from .values import CHANGE_METRICS, MEANS, QUANTILES, RATES, per_run


def bucket_values(runs: pd.DataFrame, metric: str, freq: str, by: str | None, *, log: bool = False) -> pd.DataFrame:
    """Per group and time bucket: the metric's ``value``, the ``runs`` behind it (its weight)
    and the per-run variance within buckets (``within``). ``log=True``: of the logs of the
    runs' values (a mean metric's values all positive)."""
    value, counted = per_run(runs, metric)
    if log:
        value = np.log(np.where(counted, value, 1.0))
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
    logs = None
    if metric in MEANS and bool(np.all(table["value"].to_numpy() > 0)):
        value, counted = per_run(runs, metric)
        if bool(np.all(value[counted] > 0)):  # heavy tails: find the changes of the typical run
            logs = bucket_values(runs, metric, freq, by, log=True)
    levels, segments = np.full(len(table), np.nan), np.zeros(len(table), dtype=np.int64)
    groups = table.groupby(by, observed=True, sort=False).indices if by else {None: np.arange(len(table))}
    for rows in groups.values():
        y, w = table["value"].to_numpy()[rows], table["runs"].to_numpy(dtype=float)[rows]
        if not np.sum(w) > 0:  # no runs (an empty frame): nothing to segment, and no 0/0 warning
            continue
        within = table["within"].fillna(0).to_numpy()[rows]
        fit, per_run_variance, rate = y, float(np.sum(w * within) / np.sum(w)), None
        if metric in RATES:
            rate = float(np.sum(w * y) / np.sum(w))
            per_run_variance = rate * (1 - rate)
        elif metric in QUANTILES and np.all(y > 0):
            # Sample quantiles are right-skewed: segment their logs (a step is then a ratio).
            fit, per_run_variance = np.log(y), per_run_variance / (np.sum(w * y) / np.sum(w)) ** 2
        elif logs is not None:
            fit = logs["value"].to_numpy()[rows]
            per_run_variance = float(np.sum(w * logs["within"].fillna(0).to_numpy()[rows]) / np.sum(w))
        beta = default_penalty(len(y)) if penalty is None else float(penalty)
        bounds = [0, *robust_segments(fit, per_run_variance / w, beta, min_size, rate), len(y)]
        for k, (s, e) in enumerate(zip(bounds[:-1], bounds[1:], strict=False)):
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

    Method (robust to outlier days and day-to-day noise; issue 24): each bucket's value has
    variance ``s / runs + tau^2``: ``s`` the per-run variance (binomial ``p (1 - p)`` for a
    rate, the asymptotic one on the log scale for a duration quantile, the within-bucket one
    for a mean) and ``tau^2`` the extra day-to-day variance (over-dispersion), estimated from
    the series' successive differences. Buckets unlike both their neighbours (one or two odd
    days: Bonferroni test at 1% over the series) are set aside; the rest is segmented exactly
    by PELT with a Gaussian cost weighted by 1 / variance (for rates the binomial deviance at
    each bucket's effective runs, exact for rare events), ``penalty`` = 3.6 log(n buckets) per
    change; a change is kept only if its step beats a straight line through its two segments
    by 2 (Akaike's price of the step's start), so that a drift is less often a step. Duration
    quantiles are segmented on the log scale, and means of positive values (cost, tokens per
    run) on the mean of the runs' logs: a heavy tail hides a step of the typical run (``before``
    and ``after`` are still the segments' means). Segments are at least ``min_size`` buckets.

    False alarms and power (benchmarks/sim_changes.py, 28 days of ~200 runs, 400 series each;
    docs/changes.md): at most 3% on flat, weekly, over-dispersed, volume-swing, one and two
    outlier-day series, heavy-tailed costs and a cost outlier day; 15.5% on a slow drift of 4
    points over four weeks (about as large as a 5-point step; 7.5% before); a 5-point step found
    within 2 days 62% of the time (60% before), a 10-point one 97%, a 20% cost step under
    log-normal sigma 2 tails 30% (0.6% before).

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
