"""What happened after each run: did the guest come back (a later run of the same
conversation), was that later run escalated, and what did an operator do with an escalation.
The two mistakes a QA lead hunts for: a resolution that did not hold, and an escalation an
operator dismissed.

>>> from conduit_notebook import outcomes, escalation_quality, fetch_escalations
>>> escalations = fetch_escalations(client=client, since="30d")
>>> outcomes(frames.runs, within="24h", escalations=escalations)
>>> escalation_quality(frames.runs, escalations, by="agent_name")

The window is right-censored: a run younger than ``within`` (counted back from ``as_of``, by
default the newest run's start: what was observed) with no later run yet cannot be judged, and
is ``<NA>``, never "did not come back". Every rate says how many runs it could judge. A later
run of an agent that was not fetched is not seen: fetch every agent for these numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .analysis import require_columns
from .schema import ACTED_ESCALATION_STATUSES, HANDLED_ESCALATION_STATUSES
from .stats import wilson_interval

__all__ = ["OUTCOMES", "escalation_quality", "outcomes"]

#: The cases of ``outcome``, in order.
OUTCOMES = ("held", "came_back", "came_back_escalated", "escalation_acted", "escalation_dismissed",
            "escalation_pending", "unknown")


ESCALATION_KNOWN = (*HANDLED_ESCALATION_STATUSES, "pending")


def _within(value: Any) -> pd.Timedelta:
    try:
        span = pd.Timedelta(value) if not isinstance(value, (int, float)) or isinstance(value, bool) else None
    except (ValueError, TypeError):
        span = None
    if span is None or pd.isna(span) or span <= pd.Timedelta(0):
        raise ValueError(f"within must be a positive time span such as '24h', '30m', '2d' or a "
                         f"timedelta; got {value!r}")
    return span


def _check_runs(runs: Any, what: str) -> None:
    if isinstance(runs, pd.DataFrame) and "agent_run_id" in runs.columns and "step" in runs.columns:
        raise ValueError(f"{what} takes the runs frame (frames.runs), not the tool-call table")
    require_columns(runs, ["id", "conversation_id", "created_at", "disposition"], what)


def _escalation_status(runs: pd.DataFrame, escalations: pd.DataFrame | None) -> pd.Series:
    """Each run's escalation status (missing without an escalation record)."""
    if escalations is None or not len(escalations):
        return pd.Series(pd.NA, index=runs.index, dtype=object)
    require_columns(escalations, ["agent_run_id", "status"], "escalations (fetch_escalations(...))")
    known = escalations.dropna(subset=["agent_run_id"])
    by_run = pd.Series(known["status"].astype(object).to_numpy(), index=known["agent_run_id"].astype(object).to_numpy())
    by_run = by_run[~by_run.index.duplicated(keep="last")]
    return runs["id"].astype(object).map(by_run)


def outcomes(runs: pd.DataFrame, *, within: Any = "24h", escalations: pd.DataFrame | None = None,
             as_of: Any = None) -> pd.DataFrame:
    """One row per run: what happened after it.

    - ``came_back``: a later run of the same conversation (any agent) started within ``within``
      of this one (True), none did and the run is older than ``within`` at ``as_of`` (False), or
      it is too young to tell (``<NA>``; also for a run without a conversation).
    - ``came_back_escalated``: one of those later runs was escalated.
    - ``escalation_status``: the operator's outcome of this run's escalation (``pending``,
      ``reviewed``, ``resolved``, ``dismissed``), from ``escalations`` (:func:`fetch_escalations`).
    - ``outcome``: the case, one of :data:`OUTCOMES`: for an escalated run ``escalation_acted``
      (reviewed or resolved), ``escalation_dismissed``, ``escalation_pending`` or ``unknown`` (no
      escalation record); for any other run ``came_back_escalated``, ``came_back``, ``held`` or
      ``unknown`` (too young to judge).

    ``as_of``: the moment up to which runs were observed (default: the newest run's start, which
    is honest for a window that ends in the past too). Columns: ``agent_run_id``,
    ``conversation_id``, ``agent_id``, ``agent_name``, ``disposition``, ``created_at``,
    ``next_run_at``, ``came_back``, ``came_back_escalated``, ``escalation_status``, ``outcome``.
    """
    _check_runs(runs, "outcomes")
    span = _within(within)
    created = runs["created_at"]
    end = pd.Timestamp(as_of, tz="UTC") if as_of is not None and pd.Timestamp(as_of).tzinfo is None \
        else (pd.Timestamp(as_of) if as_of is not None else created.max())
    conversation = runs["conversation_id"].astype(object)
    escalated = (runs["disposition"].astype(object) == "escalated").to_numpy()
    next_at, back_escalated = _next_runs(conversation, created, escalated, span)
    created_v = created.reset_index(drop=True)
    gap = next_at - created_v
    old_enough = (end - created_v) >= span
    came_back = pd.Series(pd.NA, index=range(len(runs)), dtype="boolean")
    came_back[gap.notna() & (gap <= span)] = True
    came_back[((gap.isna()) | (gap > span)) & old_enough & conversation.notna().to_numpy()] = False
    came_back_escalated = pd.Series(back_escalated, dtype="boolean")
    came_back_escalated[came_back.isna().to_numpy()] = pd.NA
    status = _escalation_status(runs, escalations).reset_index(drop=True)
    outcome = _outcome_of(came_back, came_back_escalated, escalated, status)
    columns = {
        "agent_run_id": runs["id"].astype(object).to_numpy(),
        "conversation_id": conversation.to_numpy(),
        "agent_id": runs["agent_id"].to_numpy() if "agent_id" in runs else None,
        "agent_name": runs["agent_name"].to_numpy() if "agent_name" in runs else None,
        "disposition": runs["disposition"].to_numpy(),
        "created_at": created_v,
        "next_run_at": next_at,
        "came_back": came_back,
        "came_back_escalated": came_back_escalated,
        "escalation_status": pd.Categorical(status, categories=list(HANDLED_ESCALATION_STATUSES) + ["pending"]),
        "outcome": pd.Categorical(outcome, categories=OUTCOMES),
    }
    result = pd.DataFrame(columns)
    result["agent_run_id"] = result["agent_run_id"].astype("string")
    result["conversation_id"] = result["conversation_id"].astype("string")
    result.index = runs.index
    result.attrs["as_of"] = end
    result.attrs["within"] = span
    return result

def _next_runs(conversation: pd.Series, created: pd.Series, escalated: np.ndarray, span: pd.Timedelta
               ) -> tuple[pd.Series, np.ndarray]:
    """Each run's next run of the same conversation (its start, NaT if none) and whether a later
    run of the conversation started within ``span`` was escalated."""
    n = len(created)
    naive = created.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    frame = pd.DataFrame({"conversation": conversation.to_numpy(), "created": naive,
                          "escalated": escalated, "row": np.arange(n)})
    frame = frame[frame["conversation"].notna() & frame["created"].notna()]
    frame = frame.sort_values(["conversation", "created", "row"], kind="stable")
    same_next = frame["conversation"].shift(-1).eq(frame["conversation"]).to_numpy()
    next_created = np.where(same_next, frame["created"].shift(-1).to_numpy(), np.datetime64("NaT"))
    next_at = pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns, UTC]")
    next_at.iloc[frame["row"].to_numpy()] = pd.to_datetime(next_created).tz_localize("UTC")
    # Escalated within the window: any later run of the conversation started in (t, t + within].
    back_escalated = np.zeros(n, dtype=bool)
    if len(frame):
        # One searchsorted over every conversation at once: each run's key is its conversation's
        # base plus its time in ms, the bases far enough apart that no window reaches the next.
        codes = pd.factorize(frame["conversation"].to_numpy(), sort=False)[0].astype(np.int64)
        ms = frame["created"].to_numpy(dtype="datetime64[ms]").astype(np.int64)
        window = int(span / pd.Timedelta(milliseconds=1))
        stride = int(ms.max() - ms.min()) + window + 1
        keys = codes * stride + (ms - ms.min())
        limit = np.searchsorted(keys, keys + window, side="right")
        cumulative = np.concatenate([[0], np.cumsum(frame["escalated"].to_numpy())])
        back_escalated[frame["row"].to_numpy()] = (cumulative[limit] - cumulative[np.arange(len(keys)) + 1]) > 0
    return next_at, back_escalated


def _outcome_of(came_back: pd.Series, came_back_escalated: pd.Series, escalated: np.ndarray,
                status: pd.Series) -> pd.Series:
    """The case of each run (:data:`OUTCOMES`): its escalation's outcome for an escalated run,
    else whether the guest came back (escalated) or the resolution held."""
    outcome = pd.Series("unknown", index=range(len(came_back)), dtype=object)
    outcome[came_back.eq(False).fillna(False).to_numpy()] = "held"
    outcome[came_back.fillna(False).to_numpy()] = "came_back"
    outcome[came_back_escalated.fillna(False).to_numpy()] = "came_back_escalated"
    outcome[escalated & status.isin(ACTED_ESCALATION_STATUSES).to_numpy()] = "escalation_acted"
    outcome[escalated & (status == "dismissed").to_numpy()] = "escalation_dismissed"
    outcome[escalated & (status == "pending").to_numpy()] = "escalation_pending"
    outcome[escalated & ~status.isin(ESCALATION_KNOWN).to_numpy()] = "unknown"
    return outcome



def _rate(successes: int, total: int) -> tuple[float, float, float]:
    if total <= 0:
        return (np.nan, np.nan, np.nan)
    low, high = wilson_interval(successes, total)
    return (successes / total, low, high)


def _quality_row(group: pd.DataFrame, escalations: pd.DataFrame | None) -> dict[str, Any]:
    resolved = group[group["disposition"].astype(object) == "resolved"]
    judged = resolved[resolved["came_back"].notna()]
    back = int(judged["came_back"].sum())
    back_esc = int(judged["came_back_escalated"].fillna(False).sum())
    escalated = group[group["disposition"].astype(object) == "escalated"]
    status = escalated["escalation_status"].astype(object)
    decided = int(status.isin(HANDLED_ESCALATION_STATUSES).sum())
    dismissed = int((status == "dismissed").sum())
    row: dict[str, Any] = {"runs": len(group), "resolved_runs": len(resolved), "resolved_judged": len(judged)}
    for name, (k, n) in {"came_back_rate": (back, len(judged)),
                         "came_back_escalated_rate": (back_esc, len(judged))}.items():
        row[name], row[f"{name}_ci_low"], row[f"{name}_ci_high"] = _rate(k, n)
    row["escalated_runs"] = len(escalated)
    row["escalations_decided"] = decided
    row["dismissed_rate"], row["dismissed_rate_ci_low"], row["dismissed_rate_ci_high"] = _rate(dismissed, decided)
    row["hours_to_review"] = np.nan
    if escalations is not None and len(escalations) and {"reviewed_at", "created_at"} <= set(escalations.columns):
        ids = set(escalated["agent_run_id"].astype(object))
        mine = escalations[escalations["agent_run_id"].astype(object).isin(ids)]
        hours = (mine["reviewed_at"] - mine["created_at"]).dt.total_seconds() / 3600
        row["hours_to_review"] = float(hours.median()) if hours.notna().any() else np.nan
    return row


def escalation_quality(runs: pd.DataFrame, escalations: pd.DataFrame | None = None, *, by: str | None = "agent_name",
                       within: Any = "24h", as_of: Any = None, outcomes_table: pd.DataFrame | None = None
                       ) -> pd.DataFrame:
    """Per group (``by``: a runs column such as ``agent_name`` or ``disposition_reason``; None:
    all runs), the two mistakes side by side, and an ``(all)`` row:

    - ``resolved_runs``; ``resolved_judged`` (older than ``within``, so they can be judged);
      ``came_back_rate`` and ``came_back_escalated_rate``: shares of the judged resolved runs
      whose guest came back within ``within`` (a resolution that did not hold), and came back
      to a run that was escalated;
    - ``escalated_runs``; ``escalations_decided`` (reviewed, resolved or dismissed: pending ones
      are left out); ``dismissed_rate``: dismissed / decided (an escalation an operator closed
      without acting: maybe not needed);
    - ``hours_to_review``: median hours from the escalation to the operator's decision.

    Each rate has ``_ci_low``/``_ci_high``: the Wilson score interval, 95% (Wilson 1927), over
    the runs it could judge (the counts beside it). See :func:`outcomes` for the definitions.

    ``outcomes_table``: :func:`outcomes` computed once over a larger frame (all the runs): a
    subset of runs (a filter) then keeps its runs' outcomes, later runs outside the subset
    included, and nothing is recomputed (``within`` and ``as_of`` are the table's).
    """
    _check_runs(runs, "escalation_quality")
    if by is not None and by not in runs.columns:
        raise ValueError(f"by must be a column of the runs frame such as 'agent_name' or "
                         f"'disposition_reason'; got {by!r}")
    if outcomes_table is None:
        table = outcomes(runs, within=within, escalations=escalations, as_of=as_of)
    else:
        table = outcomes_table.loc[outcomes_table["agent_run_id"].isin(runs["id"].astype(object))].copy()
        table.attrs = dict(outcomes_table.attrs)
        order = pd.Index(table["agent_run_id"].astype(object)).get_indexer(runs["id"].astype(object))
        table = table.iloc[order[order >= 0]]
        runs = runs.iloc[np.flatnonzero(order >= 0)]
    table["_group"] = runs[by].astype(object).to_numpy() if by is not None else "(all)"
    rows, labels = [], []
    if by is not None:
        for key, group in table.groupby("_group", sort=True, dropna=True):
            rows.append(_quality_row(group, escalations))
            labels.append(key)
    rows.append(_quality_row(table, escalations))
    labels.append("(all)")
    result = pd.DataFrame(rows, index=pd.Index(labels, name=by or "group"))
    result.attrs["within"] = table.attrs["within"]
    result.attrs["as_of"] = table.attrs["as_of"]
    return result
