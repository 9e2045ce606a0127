"""Conduit's own record of escalations: what operators did after an agent escalated.

>>> from conduit_notebook import fetch_escalations, escalation_summary
>>> escalations = fetch_escalations(client=client, since="14d")      # GET /v1/escalations
>>> escalation_summary(escalations, frames.runs, by="agent_name")     # dismissed, time to review, backlog

Every escalated run gets a second, free verdict from the operator who handled it: ``resolved``
or ``reviewed`` (the escalation was acted on), ``dismissed`` (closed without acting: a sign the
escalation was not needed) or still ``pending``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from . import times
from .client import ConduitClient
from .deprecation import renamed_arguments
from .errors import AuthenticationError, ConduitError, PermissionDeniedError
from .frames import CATEGORY, STRING, TIMESTAMP, errors_frame
from .records import escalation_problem
from .schema import ESCALATION_STATUSES, HANDLED_ESCALATION_STATUSES
from .times import parse_time

__all__ = ["ESCALATION_COLUMNS", "escalation_summary", "escalation_verdicts", "escalations_frame",
           "fetch_escalations"]

#: The escalations table: column -> dtype, in order. Other fields the API sends follow these.
ESCALATION_COLUMNS: dict[str, Any] = {
    "id": STRING,
    "agent_run_id": STRING,
    "agent_id": CATEGORY,
    "conversation_id": STRING,
    "contact_id": STRING,
    "status": CATEGORY,
    "disposition_reason": STRING,
    "created_at": TIMESTAMP,
    "reviewed_at": TIMESTAMP,
    "reviewed_by": CATEGORY,
    "guest_message": STRING,
    "proposed_response": STRING,
    "questions_for_operator": STRING,
}


def escalations_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Escalation records (the API's JSON objects) -> a DataFrame with :data:`ESCALATION_COLUMNS`
    first (missing fields are missing values), then any other field; UTC timestamps; one row per
    ``id`` (the last copy wins)."""
    rows = [dict(r) for r in records if isinstance(r, Mapping)]
    extra = list(dict.fromkeys(k for r in rows for k in r if k not in ESCALATION_COLUMNS))
    raw = pd.DataFrame.from_records(rows, columns=[*ESCALATION_COLUMNS, *extra]) if rows else \
        pd.DataFrame(columns=[*ESCALATION_COLUMNS])
    frame = pd.DataFrame(index=raw.index)
    for name, dtype in ESCALATION_COLUMNS.items():
        values = raw[name].astype(object).where(raw[name].notna(), None)
        if dtype is TIMESTAMP:
            frame[name] = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601").astype(TIMESTAMP)
        elif dtype == CATEGORY:
            frame[name] = values.map(lambda v: None if v is None else str(v)).astype("category")
        else:
            frame[name] = values.map(lambda v: None if v is None else str(v)).astype(STRING)
    for name in extra:
        frame[name] = raw[name].astype(object).where(raw[name].notna(), None)
    frame = frame[frame["id"].notna()].drop_duplicates("id", keep="last").reset_index(drop=True)
    return frame


def fetch_escalations(*, client: ConduitClient | None = None, since: Any = None,
                      status: str | None = None) -> pd.DataFrame:
    """Every chat escalation of the workspace, as a DataFrame (see :func:`escalations_frame`).

    Pages ``GET /v1/escalations`` (100 a request, through the client's pace). The endpoint needs a
    workspace: the client's ``workspace_id``, else the workspace of its first agent (one more
    request). ``status``: ``pending``, ``reviewed``, ``resolved`` or ``dismissed``. ``since``
    (as in :func:`fetch_runs`: ``"14d"``, a date, a datetime) keeps escalations created since
    then; the API has no date filter and no stated order, so every page is read.

    Nothing is dropped silently: an escalation that cannot be read (not an object, no id, a
    created_at that is not a time, a broken character) is left out and listed in
    ``frame.attrs["errors"]`` (the columns of ``RunFrames.errors``), and so is a listing that
    breaks off after its first page (the pages before it are kept); a warning says how many.
    """
    if status is not None and status not in ESCALATION_STATUSES:
        raise ValueError(f"status must be one of {', '.join(ESCALATION_STATUSES)}, got {status!r}")
    start = parse_time(since, "since")
    own = client is None
    client = client or ConduitClient()
    try:
        workspace = client.workspace_id
        if not workspace:
            workspace = next((a.get("workspace_id") for a in client.iter_agents() if a.get("workspace_id")), None)
        if not workspace:
            raise ValueError("fetch_escalations needs a workspace: pass ConduitClient(workspace_id=...) "
                             "or set CONDUIT_WORKSPACE_ID")
        records, errors = _readable_escalations(client, status, workspace)
    finally:
        if own:
            client.close()
    frame = escalations_frame(records)
    if start is not None:
        frame = frame[frame["created_at"] >= start].reset_index(drop=True)
    frame.attrs["errors"] = errors_frame(errors)
    if errors:
        unread = sum(e["agent_id"] != _LISTING for e in errors)
        said = [f"{unread:,} escalation{'s' if unread != 1 else ''} could not be read"] if unread else []
        if len(errors) > unread:
            said.append(f"{len(errors) - unread} escalation listing error (the pages before it are kept)")
        warnings.warn(f"fetch_escalations: {' and '.join(said)}; they are left out, and listed in "
                      ".attrs['errors']", UserWarning, stacklevel=2)
    return frame


_LISTING = "(escalation listing)"


def _readable_escalations(client: ConduitClient, status: str | None, workspace: str
                          ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The escalations that can be framed, and an error row for each that cannot (and for a
    listing that breaks off after its first page: the pages before are kept)."""
    records: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    try:
        for record in client.iter_escalations(status=status, workspace_id=workspace):
            problem = escalation_problem(record)
            if problem is None:
                records.append(record)
                continue
            run_id = record.get("agent_run_id") if isinstance(record, Mapping) else None
            agent_id = record.get("agent_id") if isinstance(record, Mapping) else None
            escalation = record.get("id") if isinstance(record, Mapping) else None
            errors.append({"agent_id": agent_id if isinstance(agent_id, str) else None,
                           "agent_run_id": run_id if isinstance(run_id, str) else None,
                           "status_code": None, "attempts": None,
                           "error": f"An escalation{f' ({escalation})' if isinstance(escalation, str) else ''} "
                                    f"could not be read: {problem}. It was left out."})
    except (AuthenticationError, PermissionDeniedError):
        raise
    except ConduitError as exc:
        if not records and not errors:
            raise  # not one page: the endpoint itself failed
        errors.append({"agent_id": _LISTING, "agent_run_id": None,
                       "status_code": getattr(exc, "status_code", None),
                       "attempts": getattr(exc, "attempts", None), "error": str(exc)})
    return records, errors


def _joined(escalations: pd.DataFrame, runs: pd.DataFrame | None) -> pd.DataFrame:
    """Escalations with ``agent_name`` and a reason, filled from their runs (by agent_run_id)."""
    frame = escalations.copy()
    frame["agent_name"] = pd.Series(pd.NA, index=frame.index, dtype=object)
    if runs is None or not len(runs):
        frame["agent_name"] = frame["agent_id"].astype(object)
        return frame
    by_run = runs.drop_duplicates("id").set_index(runs.drop_duplicates("id")["id"].astype(object))
    run_ids = frame["agent_run_id"].astype(object)
    if "agent_name" in runs:
        names = dict(zip(runs["agent_id"].astype(object), runs["agent_name"].astype(object), strict=False))
        frame["agent_name"] = run_ids.map(by_run["agent_name"].astype(object)).fillna(
            frame["agent_id"].astype(object).map(names))
    frame["agent_name"] = frame["agent_name"].fillna(frame["agent_id"].astype(object))
    if "disposition_reason" in runs:
        reason = frame["disposition_reason"].astype(object)
        frame["disposition_reason"] = reason.fillna(run_ids.map(by_run["disposition_reason"].astype(object)))
    return frame


@renamed_arguments(now="as_of")
def escalation_summary(escalations: pd.DataFrame, runs: pd.DataFrame | None = None, *,
                       by: str | None = "agent_name", as_of: Any = None) -> pd.DataFrame:
    """What operators did with the escalations, per ``by`` (``"agent_name"``, ``"agent_id"``,
    ``"disposition_reason"`` or None) and "(all)".

    Joined to ``runs`` by ``agent_run_id`` for the agent's name (and a reason the escalation
    lacks). Columns: ``escalations``; ``pending``, ``reviewed``, ``resolved``, ``dismissed``
    (counts); ``dismissed_share`` (dismissed among those handled: escalations operators closed
    without acting, a sign they were not needed); ``p50_hours_to_review`` and
    ``p90_hours_to_review`` (created to reviewed, handled ones); ``oldest_pending_hours`` (the
    backlog's age at ``as_of``, default the current time, as in :func:`escalation_quality`). Every escalation is counted (no sample),
    so there is no interval.
    """
    if not isinstance(escalations, pd.DataFrame):
        raise TypeError(f"escalations must be the frame from fetch_escalations(), got {type(escalations).__name__}")
    missing = [c for c in ("status", "agent_run_id", "created_at", "reviewed_at") if c not in escalations]
    if missing:
        looks = (" (this looks like the runs table: pass it as runs=)" if "disposition" in escalations
                 and "id" in escalations else "")
        raise ValueError(f"escalations must be the frame from fetch_escalations() (columns status, agent_run_id, "
                         f"created_at, reviewed_at); it lacks {', '.join(missing)}{looks}")
    if runs is not None and (not isinstance(runs, pd.DataFrame) or "id" not in runs):
        what = ("the tool-call table (frames.tool_calls)" if isinstance(runs, pd.DataFrame) and "agent_run_id" in runs
                else type(runs).__name__ if not isinstance(runs, pd.DataFrame) else "a frame without an id column")
        raise ValueError(f"escalation_summary: runs must be the runs table (frames.runs) or None; got {what}")
    if by not in (None, "agent_name", "agent_id", "disposition_reason"):
        raise ValueError(f"by must be 'agent_name', 'agent_id', 'disposition_reason' or None, got {by!r}")
    when = parse_time(as_of, "as_of") if as_of is not None else None
    now = when if when is not None else pd.Timestamp(times.utc_now())
    frame = _joined(escalations, runs)
    keys = frame[by].astype(object).fillna("(none)") if by else pd.Series("(all)", index=frame.index)
    status = frame["status"].astype(object)
    hours = (frame["reviewed_at"] - frame["created_at"]).dt.total_seconds() / 3600
    waiting = ((now - frame["created_at"]).dt.total_seconds() / 3600).where(status == "pending")
    parts = pd.DataFrame({"key": keys, "status": status, "hours": hours.where(status.isin(HANDLED_ESCALATION_STATUSES)),
                          "waiting": waiting})

    def table(groups: Any) -> pd.DataFrame:
        counts = pd.crosstab(groups["key"], groups["status"]).reindex(columns=list(ESCALATION_STATUSES), fill_value=0)
        out = pd.DataFrame({"escalations": groups.groupby("key").size()})
        out = out.join(counts).fillna(0).astype("int64")
        handled = out[list(HANDLED_ESCALATION_STATUSES)].sum(axis=1)
        out["dismissed_share"] = (out["dismissed"] / handled.where(handled > 0)).astype("float64")
        grouped = groups.groupby("key")
        out["p50_hours_to_review"] = grouped["hours"].median()
        out["p90_hours_to_review"] = grouped["hours"].quantile(0.9)
        out["oldest_pending_hours"] = grouped["waiting"].max()
        return out

    if not len(parts):
        return table(parts.assign(key=pd.Series(dtype=object))).rename_axis(by or "group")
    result = table(parts)
    if by:
        result = pd.concat([result.sort_values("escalations", ascending=False),
                            table(parts.assign(key="(all)"))])
    result.index.name = by or "group"
    return result


def escalation_verdicts(votes: pd.DataFrame, escalations: pd.DataFrame) -> pd.DataFrame:
    """The reviewers' verdict on each judged escalated run beside the operator's outcome:
    verdict (rows) against operator status (columns), counts."""
    if not len(votes) or not len(escalations):
        return pd.DataFrame()
    status = escalations.drop_duplicates("agent_run_id", keep="last").set_index(
        escalations.drop_duplicates("agent_run_id", keep="last")["agent_run_id"].astype(object))["status"].astype(object)
    judged = votes[votes["disposition"] == "escalated"]
    operator = judged["agent_run_id"].astype(object).map(status).fillna("(no escalation record)")
    return pd.crosstab(judged["verdict"].rename("verdict"), operator.rename("operator"))
