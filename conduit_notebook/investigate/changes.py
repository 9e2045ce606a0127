"""Change points: on which day a metric's level shifted (:func:`change_points`), and the
per-bucket series with the level of its segment (:func:`metric_levels`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..analysis import require_columns, require_runs
from ..deprecation import keyword_only_after
from ..stats import default_penalty, line_fit, robust_fit
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
        whole: Any = frame.groupby("g", observed=True)["x"] if by is not None else frame["x"]
        spread: Any = whole.quantile(q + h) - whole.quantile(q - h)
        per_run_variance = q * (1 - q) * (spread / (2 * h)) ** 2
        table["within"] = (per_run_variance.reindex(table.index.get_level_values(0)).to_numpy() if by is not None
                           else float(per_run_variance))
    else:
        table = pd.DataFrame({"value": grouped.mean(), "runs": grouped.count(), "within": grouped.var(ddof=0)})
    return table[table["runs"] > 0].reset_index()


@keyword_only_after("runs", moved=("metric",))
def metric_levels(runs: pd.DataFrame, *, metric: str = "escalation_rate", freq: str = "D",
                  by: str | None = None, penalty: float | None = None, min_size: int = 3) -> pd.DataFrame:
    """The metric per ``freq`` bucket (and ``by`` group): ``at`` (bucket start), ``value``,
    ``runs`` behind it, and ``level``, the mean of the segment :func:`change_points` puts the
    bucket in (in a trend, the weighted least-squares line through it); ``segment`` numbers
    the segments, ``trend`` says whether the bucket's segment is a trend. Buckets without runs
    are left out."""
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
    trend = np.zeros(len(table), dtype=bool)
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
        cuts, drifts = robust_fit(fit, per_run_variance / w, beta, min_size, rate)
        bounds = [0, *cuts, len(y)]
        for k, (s, e) in enumerate(zip(bounds[:-1], bounds[1:], strict=False)):
            levels[rows[s:e]] = (line_fit(y[s:e], w[s:e]) if drifts[k]
                                 else np.sum(w[s:e] * y[s:e]) / np.sum(w[s:e]))
            segments[rows[s:e]], trend[rows[s:e]] = k, drifts[k]
    table["level"], table["segment"], table["trend"] = levels, segments, trend
    return table.drop(columns="within")


@keyword_only_after("runs", moved=("metric",))
def change_points(runs: pd.DataFrame, *, metric: str = "escalation_rate", freq: str = "D",
                  by: str | None = None, penalty: float | None = None, min_size: int = 3) -> pd.DataFrame:
    """The times where ``metric`` (one of :data:`CHANGE_METRICS`) moved to another level:
    columns ``at``, ``before``, ``after``, ``change`` (after - before), ``kind`` and ``by``'s
    group. A ``"step"`` row is a level shift: ``at`` is the first bucket at the new level,
    ``before`` and ``after`` the levels either side. A ``"trend"`` row is a segment that moved in
    a way a straight line explains about as well as a step (a drift, or a step the data cannot
    tell from one): ``at`` is its first bucket, ``before`` and ``after`` the fitted line at its
    first and last bucket. Nothing on a flat series.

    Method (robust to outlier days, day-to-day noise and drift; issue 24): each bucket's value
    has variance ``s / runs + tau^2``: ``s`` the per-run variance (binomial ``p (1 - p)`` for a
    rate, the asymptotic one on the log scale for a duration quantile, the within-bucket one
    for a mean) and ``tau^2`` the extra day-to-day variance (over-dispersion), estimated from
    the series' successive differences. Buckets unlike both their neighbours (one or two odd
    days: Bonferroni test at 1% over the series) are set aside; the rest is segmented exactly
    by PELT with a Gaussian cost weighted by 1 / variance (for rates the binomial deviance at
    each bucket's effective runs, exact for rare events), ``penalty`` = 3.6 log(n buckets) per
    change. ``tau^2`` is then estimated again without the differences across the changes, and
    a change is kept as a step only if the step explains its two segments better than a
    straight line through them by :data:`~conduit_notebook.stats.STEP_MARGIN` (6.5, in
    chi-square units, calibrated by simulation so that a drift is a step under 5% of the time);
    otherwise its segments merge into a trend. A segment whose line beats its mean by the
    penalty is a trend too. Duration quantiles are segmented on the log scale, and means of
    positive values (cost, tokens per run) on the mean of the runs' logs: a heavy tail hides a
    step of the typical run (``before`` and ``after`` are still the segments' means).
    Segments are at least ``min_size`` buckets.

    False alarms and detection (benchmarks/sim_changes.py, 28 days of ~200 runs, 400 series
    each; docs/changes.md): any row at most 3.2% on flat, weekly, over-dispersed,
    volume-swing, one and two outlier-day series, heavy-tailed costs and a cost outlier day; a
    drift of 4 or 8 points over four weeks is a step 4.5% and 4.2% of the time (15.5% and
    28.7% before) and a trend 15% and 80%. A step found within 2 days, as a step / as a step
    or trend: 2 points 1.5% / 7.5%, 5 points 30% / 76% (62% before, as a step), 10 points
    92% / 99.8% (96.8%), a 20% cost step under log-normal sigma 2 tails 15% / 43% (30%).

    >>> change_points(runs, metric="escalation_rate", by="agent_name")
    """
    levels = metric_levels(runs, metric=metric, freq=freq, by=by, penalty=penalty, min_size=min_size)
    segment = levels["segment"].to_numpy()
    # A segment's first bucket: its number changes, or the group does (each group's rows are together).
    key = pd.factorize(levels[by])[0] if by else np.zeros(len(levels), dtype=np.int64)
    first = np.r_[True, (segment[1:] != segment[:-1]) | (key[1:] != key[:-1])] if len(levels) else np.zeros(0, dtype=bool)
    last = np.r_[first[1:], True] if len(levels) else first
    group = {by: levels[by]} if by else {}
    steps = pd.DataFrame({**group, "at": levels["at"], "before": levels["level"].shift(1),
                          "after": levels["level"], "kind": "step"})[first & (segment > 0)]
    drifting = levels["trend"].to_numpy()
    trends = pd.DataFrame({**group, "at": levels["at"], "before": levels["level"], "kind": "trend",
                           "after": levels["level"].to_numpy()[np.flatnonzero(last)][np.cumsum(first) - 1]
                           if len(levels) else levels["level"]})[first & drifting]
    out = pd.concat([steps, trends]).sort_index(kind="stable")
    out["change"] = out["after"] - out["before"]
    out = out[[*group, "at", "before", "after", "change", "kind"]]
    return out.reset_index(drop=True)
