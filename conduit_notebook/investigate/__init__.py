"""Investigations: is a change real, which tool paths end in escalations, where an agent repeats
itself, what a whole conversation cost, and on which day a metric's level shifted.

>>> from conduit_notebook import compare, tool_paths, repeated_calls, conversations, change_points
>>> compare(last_week, week_before)            # every metric, with 95% intervals and Holm's p-values
>>> tool_paths(calls, runs).head(10)           # the commonest tool sequences and how they end
>>> repeated_calls(calls, runs)                # the same tool with the same input, again and again
>>> conversations(runs)                        # one row per guest thread: runs, cost, escalated
>>> change_points(runs, metric="escalation_rate", by="agent_name")

Metrics mean what they mean everywhere in the package (:func:`conduit_notebook.summarize`,
:func:`conduit_notebook.cost_breakdown`):

- ``escalation_rate`` / ``resolution_rate``: escalated / resolved among completed runs that
  have a disposition; ``failure_rate``: failed among finished (completed or failed) runs.
- ``p50/p90/p99_duration_s``: quantiles (linear interpolation) of the runs with a duration.
- ``tokens_per_run`` / ``cost_per_run``: means over the runs with token usage / with a cost.
- ``cost_per_resolved_run``: the cost of *all* runs divided by the resolved runs.
- ``disposition:<name>``: share among runs with a disposition.

Pure functions of the frames of :func:`conduit_notebook.fetch_runs`; none needs the API. One
module per question: :mod:`.compare`, :mod:`.paths`, :mod:`.repeats`, :mod:`.threads`,
:mod:`.changes`; the per-run values they share in :mod:`.values`, the statistics in
:mod:`conduit_notebook.stats`.
"""

from __future__ import annotations

from .changes import change_points, metric_levels
from .compare import COMPARE_COLUMNS as COMPARE_COLUMNS
from .compare import compare, compare_tools
from .paths import NO_TOOLS as NO_TOOLS
from .paths import run_paths, tool_paths, tool_transitions
from .repeats import canonical_json as canonical_json
from .repeats import repeat_rates, repeated_calls
from .threads import contacts, conversations
from .values import CHANGE_METRICS

__all__ = ["CHANGE_METRICS", "change_points", "compare", "compare_tools", "contacts", "conversations",
           "metric_levels", "repeat_rates", "repeated_calls", "run_paths", "tool_paths", "tool_transitions"]
