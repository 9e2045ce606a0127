"""The frames a fetch returns, assembled: its runs and tool calls from the cache (or the records
at hand), agent names as the workspace has them now, and traces only where they count, with
their weights (:func:`finish_frames`); shared by :func:`~conduit_notebook.fetch.fetch_runs` and
the later fetches of :mod:`.fetch_more`."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Collection, Mapping
from typing import Any, cast

import numpy as np
import pandas as pd

from .cache import RunCache
from .fetch_job import Candidate, FetchJob
from .frames import newest_first, runs_frame, tool_calls_frame
from .sampling import TRACE_FAILED, trace_weights
from .schema import DETAIL_COLUMNS

__all__ = ["finish_frames", "frames_of", "from_records", "is_interactive", "open_store", "records_at_hand",
           "warn_failed_traces", "window_frames"]


def is_interactive() -> bool:
    if "ipykernel" in sys.modules:
        return True
    return bool(getattr(sys.stderr, "isatty", lambda: False)()) and not os.environ.get("CI")


def warn_failed_traces(failed: int, asked: int) -> None:
    """Say that traces failed for good, where they are and what the estimates then assume."""
    if failed:
        warnings.warn(f"{failed:,} of {asked:,} traces failed after retries: their runs are in runs "
                      "(fields of the list page, trace_failed=True) and the failures in errors. Trace-based "
                      "estimates reweight the traced runs within agent x disposition x status, assuming the "
                      "failed traces are missing at random there; frames.fetch_traces() tries them again.",
                      UserWarning, stacklevel=3)


def window_frames(job: FetchJob, keep: list[Candidate], failed: set[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The runs and tool calls of the fetched window, in the statuses asked for, with traces
    where they count (:func:`_finish`); ``failed``: the runs whose trace failed."""
    runs, calls = frames_of(job, keep, job.agent_names)
    if job.statuses:  # a run refreshed from the cache may have changed status
        mask = runs["status"].isin(job.statuses).to_numpy()
        dropped = set(runs.loc[~mask, "id"])
        runs = runs[mask].reset_index(drop=True)
        if dropped:
            calls = calls[~calls["agent_run_id"].isin(dropped)].reset_index(drop=True)
    traced = set() if job.details is False else {c.id for c in keep if c.has_trace or c.id in job.records}
    undrawn = {c.id for c in keep if not c.drawn}
    return finish_frames(runs, calls, traced, job.agent_names, failed=failed, undrawn=undrawn)


def finish_frames(runs: pd.DataFrame, calls: pd.DataFrame, traced_ids: set[str],
            names: Mapping[str, str | None], sampled: Mapping[str, float] | None = None,
            failed: Collection[str] = (), undrawn: Collection[str] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Agent names as the workspace has them now, and traces only where they count: the detail
    columns and tool calls of runs without a (current) trace are left out, and each traced run
    gets its ``trace_weight``. Given ``sampled`` (the random sample's weights by run id, when
    traces are added by hand), those runs keep their weights and the other traced runs get 0:
    picked, not drawn, they stay out of the estimates (all traced: every weight 1). Runs in
    ``failed`` (their trace failed for good) get ``trace_failed`` True: non-response, which
    the traced runs of their stratum stand for. Runs in ``undrawn`` are outside the random
    sample (their trace was at hand, not drawn): weight 0 if traced."""
    runs["agent_name"] = pd.Categorical(
        runs["agent_id"].astype(object).map(dict(names)).where(runs["agent_id"].notna(), None)
    )
    # The tool calls carry it too, beside agent_id: grouping calls by agent needs no merge.
    names_of_calls = pd.Categorical(
        calls["agent_id"].astype(object).map(dict(names)).where(calls["agent_id"].notna(), None)
    )
    if "agent_name" in calls:
        calls["agent_name"] = names_of_calls
    else:
        calls.insert(int(cast(Any, calls.columns.get_loc("agent_id"))) + 1, "agent_name", cast(Any, names_of_calls))
    traced = runs["id"].astype(object).isin(traced_ids).to_numpy()
    if not traced.all():
        for column in DETAIL_COLUMNS:
            if runs[column].notna().to_numpy()[~traced].any():
                runs[column] = runs[column].where(traced)
        if len(calls):
            calls = calls[calls["agent_run_id"].astype(object).isin(traced_ids).to_numpy()].reset_index(drop=True)
    if sampled is None or traced.all():
        drawn = ~runs["id"].astype(object).isin(set(undrawn)).to_numpy() if undrawn else None
        runs["trace_weight"] = trace_weights(runs, traced, drawn)
    else:
        kept = runs["id"].astype(object).map(dict(sampled)).to_numpy(dtype=float, na_value=np.nan)
        runs["trace_weight"] = np.where(traced, np.nan_to_num(kept, nan=0.0), np.nan)
    runs[TRACE_FAILED] = runs["id"].astype(object).isin(set(failed)).to_numpy() & ~traced
    return runs, calls


def frames_of(job: FetchJob, keep: list[Candidate], names: Mapping[str, str | None]) -> tuple[pd.DataFrame, pd.DataFrame]:
    ids = [c.id for c in keep]
    if job.store is not None:
        runs, calls = job.store.load(job.source, ids)
    else:
        records = [job.records.get(c.id) or c.summary for c in keep]
        runs, calls = from_records([r for r in records if r is not None], names)
    return runs, calls


def records_at_hand(job: FetchJob, keep: list[Candidate]) -> dict[str, dict[str, Any]]:
    """Without a cache: each run's full record if fetched, else its summary."""
    found = {c.id: job.records.get(c.id) or c.summary for c in keep}
    return {run_id: record for run_id, record in found.items() if record is not None}


def from_records(records: list[dict[str, Any]], names: Mapping[str, str | None]) -> tuple[pd.DataFrame, pd.DataFrame]:
    return newest_first(runs_frame(records, agent_names=names), tool_calls_frame(records))


def open_store(cache: RunCache | str | os.PathLike[str] | bool | None) -> RunCache | None:
    """The cache ``cache=`` names: none for False, the default file for None or True."""
    if cache is False:
        return None
    if isinstance(cache, RunCache):
        return cache
    return RunCache(None if cache is None or cache is True else cache)
