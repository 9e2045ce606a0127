"""Per-run values the investigations share: a metric's value per run and whether the run
counts for it (:func:`per_run`), category codes and a run-id lookup. Metrics mean what they
mean everywhere in the package (see :mod:`conduit_notebook.investigate`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..schema import FINISHED_STATUSES

RATES = ("escalation_rate", "failure_rate", "resolution_rate")
QUANTILES = {"p50_duration_s": 0.5, "p90_duration_s": 0.9, "p99_duration_s": 0.99}
MEANS = ("tokens_per_run", "cost_per_run")
#: The metrics :func:`change_points` and :func:`metric_levels` follow.
CHANGE_METRICS = (*RATES, *QUANTILES, *MEANS)


def float_values(series: pd.Series) -> np.ndarray:
    """The series as float64, missing as NaN."""
    return series.astype("float64").to_numpy(na_value=np.nan)


def text_values(series: pd.Series) -> np.ndarray:
    """The series as an object array (strings and None)."""
    return series.astype(object).to_numpy()


def resolved_list(resolved: str | Sequence[str]) -> list[str]:
    """The dispositions that count as resolved, as a list."""
    return [resolved] if isinstance(resolved, str) else list(resolved)


def per_run(runs: pd.DataFrame, metric: str, resolved: str | Sequence[str] = "resolved") -> tuple[np.ndarray, np.ndarray]:
    """(value, counted) per run: a rate's event (0/1) and whether the run is in its denominator,
    or a run's value and whether it has one."""
    if metric in RATES:
        status, disposition = text_values(runs["status"]), runs["disposition"]
        if metric == "failure_rate":
            return (status == "failed").astype(float), np.isin(status, FINISHED_STATUSES)
        counted = (status == "completed") & disposition.notna().to_numpy()
        wanted = ["escalated"] if metric == "escalation_rate" else resolved_list(resolved)
        return disposition.astype(object).isin(wanted).to_numpy().astype(float), counted
    if metric in QUANTILES:
        values = float_values(runs["duration_ms"]) / 1000.0
    elif metric in MEANS:
        values = float_values(runs["total_tokens" if metric == "tokens_per_run" else "total_cost"])
    else:
        raise ValueError(f"metric must be one of {', '.join(CHANGE_METRICS)}; got {metric!r}")
    return values, ~np.isnan(values)


def category_codes(series: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Category codes (int64, -1 for missing) and the categories, without copying strings."""
    series = series if isinstance(series.dtype, pd.CategoricalDtype) else series.astype("category")
    return series.cat.codes.to_numpy().astype(np.int64), series.cat.categories
