"""What the Conduit API's records hold, defined once: run and escalation statuses, and the
fields only a run's full record has. The client, the frames, the cache, the fetch, the
analysis and the demo server all take these from here.

>>> from conduit_notebook.schema import FINISHED_STATUSES, RUN_STATUSES
>>> runs[runs["status"].isin(FINISHED_STATUSES)]
"""

from __future__ import annotations

__all__ = [
    "ACTED_ESCALATION_STATUSES",
    "DETAIL_COLUMNS",
    "DETAIL_FIELDS",
    "ESCALATION_STATUSES",
    "FINISHED_STATUSES",
    "HANDLED_ESCALATION_STATUSES",
    "RUN_STATUSES",
    "UNFINISHED_STATUSES",
]

#: A run's statuses, in lifecycle order (also the order of the ``status`` categories).
RUN_STATUSES = ("accepted", "running", "completed", "failed")
#: Runs in these statuses are over and do not change; ``accepted`` and ``running`` runs are
#: not (yet).
FINISHED_STATUSES = ("completed", "failed")
UNFINISHED_STATUSES = tuple(s for s in RUN_STATUSES if s not in FINISHED_STATUSES)

#: An escalation's statuses: waiting for a person, then handled in one of three ways.
ESCALATION_STATUSES = ("pending", "reviewed", "resolved", "dismissed")
HANDLED_ESCALATION_STATUSES = tuple(s for s in ESCALATION_STATUSES if s != "pending")
#: Handled by acting on it (an operator looked into it and replied or fixed it); ``dismissed``
#: escalations were closed without acting.
ACTED_ESCALATION_STATUSES = tuple(s for s in HANDLED_ESCALATION_STATUSES if s != "dismissed")

#: What the get endpoint adds to a run's list summary.
DETAIL_FIELDS = frozenset({"session_id", "disposition_reason", "trigger_event_id", "response",
                           "reflection", "tool_trace"})
#: The runs-table columns only those fields fill (empty when fetched with ``details=False``):
#: each detail field but ``tool_trace``, which becomes the tool-call table and its count.
DETAIL_COLUMNS = (*sorted(DETAIL_FIELDS - {"tool_trace"}), "tool_call_count")
