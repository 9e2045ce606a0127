"""One definition per metric name, used by every table, card, plot, widget and the report.

A column called ``failure_rate`` or ``cost_per_run`` means the same thing wherever it appears:
:func:`conduit_notebook.summarize`, :func:`conduit_notebook.cost_breakdown`, the report's cards
and tables, the explorer. New tables and plots compute these names with the functions below
and describe them with :data:`GLOSSARY` (the README's glossary is the same text).

>>> from conduit_notebook.metrics import GLOSSARY, failure_rate, format_metric
>>> failure_rate(failed=3, finished=60)
0.05
>>> format_metric("failure_rate", 0.05)
'5.0%'
"""

from __future__ import annotations

from typing import Any

import numpy as np

# How each metric prints is formatting.py's; importable from here as before.
from .formatting import METRIC_FORMATS as FORMATS
from .formatting import format_metric
from .schema import FINISHED_STATUSES

__all__ = [
    "FINISHED_STATUSES",
    "FORMATS",
    "GLOSSARY",
    "cost_per_resolved_run",
    "cost_per_run",
    "failure_rate",
    "format_metric",
    "ratio",
    "share",
    "tokens_per_run",
]


#: Every metric name a table or card shows, and what it means.
GLOSSARY: dict[str, str] = {
    "runs": "number of runs",
    "share": "the group's runs divided by all runs in the table",
    "failure_rate": "failed runs divided by finished (completed + failed) runs; "
                    "runs still accepted or running are left out",
    "p50_duration_s": "median duration in seconds, of runs with a duration (finished runs)",
    "p90_duration_s": "90th percentile of the duration in seconds, of runs with a duration",
    "p99_duration_s": "99th percentile of the duration in seconds, of runs with a duration",
    "input_tokens": "sum of input (prompt) tokens",
    "output_tokens": "sum of output (completion) tokens",
    "total_tokens": "sum of input + output tokens",
    "tokens_per_run": "total_tokens divided by the runs that report token usage",
    "output_token_share": "output_tokens divided by total_tokens",
    "total_cost": "sum of the runs' cost in USD (a run without a cost adds nothing)",
    "cost_per_run": "total_cost divided by the runs that have a cost (unfinished runs have none yet)",
    "cost_share": "the group's total_cost divided by the total_cost of all groups",
    "resolved_runs": "runs whose disposition counts as resolved (default: 'resolved')",
    "cost_per_resolved_run": "total_cost of all the group's runs divided by its resolved_runs",
    "escalation_rate": "escalated runs divided by completed runs that have a disposition",
    "resolution_rate": "resolved runs divided by completed runs that have a disposition",
    "came_back_rate": ("resolved runs whose guest came back (a later run of the same conversation, any agent, "
                       "started within 24 h by default) divided by the resolved runs old enough to judge"),
    "came_back_escalated_rate": ("resolved runs whose guest came back to a run that was escalated, divided by "
                                 "the resolved runs old enough to judge: a resolution that did not hold"),
    "dismissed_rate": ("escalations an operator dismissed (closed without acting) divided by the escalations "
                       "decided (reviewed, resolved or dismissed; pending left out)"),
}

def ratio(numerator: Any, denominator: Any) -> Any:
    """``numerator / denominator``, NaN where the denominator is 0 (never a 0 or an inf):
    elementwise on arrays, a float on scalars."""
    num = np.asarray(numerator, dtype="float64")
    den = np.asarray(denominator, dtype="float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return float(out) if out.ndim == 0 else out


def failure_rate(failed: Any, finished: Any) -> Any:
    """Failed runs / finished (completed + failed) runs; NaN when nothing has finished."""
    return ratio(failed, finished)


def cost_per_run(total_cost: Any, runs_with_cost: Any) -> Any:
    """Total cost / the runs that have a cost (a run without one is not counted as $0)."""
    return ratio(total_cost, runs_with_cost)


def tokens_per_run(total_tokens: Any, runs_with_tokens: Any) -> Any:
    """Total tokens / the runs that report token usage."""
    return ratio(total_tokens, runs_with_tokens)


def cost_per_resolved_run(total_cost: Any, resolved_runs: Any) -> Any:
    """The cost of *all* of a group's runs / its resolved runs: what one resolution costs."""
    return ratio(total_cost, resolved_runs)


def share(part: Any, whole: Any) -> Any:
    """``part / whole``, NaN for an empty whole."""
    return ratio(part, whole)
