"""Fetches after :func:`~conduit_notebook.fetch.fetch_runs`: the traces a sample left out and
conversations' messages, into the frames it returned (``RunFrames.fetch_traces``,
``RunFrames.fetch_messages``, through their :class:`TraceSource`)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .cache import RunCache
from .client import ConduitClient
from .fetch_frames import finish_frames, from_records, is_interactive, open_store, warn_failed_traces
from .fetch_job import Candidate, FetchJob
from .frames import errors_frame
from .messages import concat_messages, fetch_threads, newest_activity, plan_threads
from .runframes import RunFrames
from .sampling import TRACE_FAILED
from .traces import fetch_details

__all__ = ["TraceSource", "fetch_more_messages", "fetch_more_traces"]


@dataclass
class TraceSource:
    """Where :meth:`RunFrames.fetch_traces` gets more traces: the client (None: one built from
    the environment), the cache (or, without one, the records at hand) and the agents' names."""

    client: ConduitClient | None
    cache: RunCache | str | os.PathLike[str] | None | bool
    source: str
    agent_names: dict[str, str | None]
    records: dict[str, dict[str, Any]] | None = None

    def fetch_traces(self, frames: RunFrames, run_ids: Any, *, progress: bool | None) -> None:
        fetch_more_traces(self, frames, run_ids, progress=progress)

    def fetch_messages(self, frames: RunFrames, conversation_ids: list[str], *, refresh: bool,
                       progress: bool | None) -> None:
        fetch_more_messages(self, frames, conversation_ids, refresh=refresh, progress=progress)


def fetch_more_messages(src: TraceSource, frames: RunFrames, conversation_ids: list[str], *,
                         refresh: bool, progress: bool | None) -> None:
    """Fetch the threads of ``conversation_ids`` that are not stored (or are stale) into
    ``frames.messages``; say first what it costs when it is more than a handful."""
    client = src.client or ConduitClient()
    store = open_store(src.cache)
    try:
        newest = newest_activity(frames.runs)
        plan = plan_threads(conversation_ids, cache=store, source=src.source, newest=newest, refresh=refresh)
        todo = plan[0]
        if len(todo) > 20:
            minutes = len(todo) / client.limiter.requests_per_minute
            print(f"conduit-notebook: fetching the messages of {len(todo):,} conversations: about {len(todo):,} "
                  f"requests (one per thread of up to 100 messages), {minutes:.1f} minutes at "
                  f"{client.limiter.requests_per_minute:g} a minute; stored threads cost nothing.", file=sys.stderr)
        show = is_interactive() if progress is None else progress
        messages, errors, requests = fetch_threads(client, store, src.source, conversation_ids, progress=show,
                                                   plan=plan)
        others = frames.messages[~frames.messages["conversation_id"].astype(object).isin(set(conversation_ids))]
        messages = concat_messages(others, messages)
        messages.attrs.clear()
        frames.messages = messages
        if len(errors):
            frames.errors = pd.concat([frames.errors, errors], ignore_index=True)
        frames.stats.requests += requests
    finally:
        if store is not None and store is not src.cache:
            store.close()
        if src.client is None:
            client.close()


def fetch_more_traces(src: TraceSource, frames: RunFrames, run_ids: Any, *, progress: bool | None) -> None:
    """Fetch the missing traces of ``run_ids`` (None: every run without one) into ``frames``."""
    runs = frames.runs
    weight = runs["trace_weight"] if "trace_weight" in runs else pd.Series(np.nan, index=runs.index)
    if run_ids is None:
        wanted = list(runs.loc[weight.isna().to_numpy(), "id"].astype(object))
    else:
        wanted = [run_ids] if isinstance(run_ids, str) else list(pd.Series(run_ids).astype(object))
        unknown = [i for i in wanted if i not in set(runs["id"].astype(object))]
        if unknown:
            raise ValueError(f"run_ids must be ids of runs in these frames; not found: "
                             f"{', '.join(map(repr, unknown[:5]))}{' ...' if len(unknown) > 5 else ''}")
    lacking = set(runs.loc[weight.isna().to_numpy(), "id"].astype(object))
    missing = [i for i in dict.fromkeys(wanted) if i in lacking]
    if not missing:
        return
    client = src.client or ConduitClient()
    store = open_store(src.cache)
    try:
        show = is_interactive() if progress is None else progress
        job = FetchJob(client, store, since_ms=None, until_ms=None, statuses=(), details=True, max_runs=None,
                     progress=show, agent_names=src.agent_names)
        job.source = src.source
        agent_of = dict(zip(runs["id"].astype(object), runs["agent_id"].astype(object), strict=False))
        known = store.lookup(src.source, missing) if store is not None else {}
        todo = []
        for run_id in missing:
            cached = known.get(run_id)
            c = Candidate(run_id, agent_of[run_id], None, None, cached)
            c.has_trace = cached is not None and cached.detailed and cached.finished
            c.fetch = not c.has_trace
            todo.append(c)
        failed = fetch_details(job, todo)
        before = (set(runs.loc[runs[TRACE_FAILED].fillna(False).to_numpy(dtype=bool), "id"].astype(object))
                  if TRACE_FAILED in runs else set())
        traced = set(runs.loc[weight.notna().to_numpy(), "id"].astype(object))
        traced |= {c.id for c in todo if c.id not in failed}
        ids = list(runs["id"].astype(object))
        if store is not None:
            new_runs, new_calls = store.load(src.source, ids)
        else:
            assert src.records is not None  # kept whenever there is no cache to read from
            src.records.update(job.records)
            new_runs, new_calls = from_records([src.records[i] for i in ids if i in src.records], src.agent_names)
        random_part = weight.to_numpy(dtype=float, na_value=np.nan) > 0
        sampled = dict(zip(runs["id"].astype(object)[random_part], weight.to_numpy(dtype=float)[random_part], strict=False))
        frames.runs, frames.tool_calls = finish_frames(new_runs, new_calls, traced, src.agent_names, sampled,
                                                 failed=(before | failed) - traced)
        if job.errors:
            frames.errors = pd.concat([frames.errors, errors_frame(job.errors)], ignore_index=True)
        frames.stats.detail_requests += job.stats.detail_requests
        warn_failed_traces(len(failed), len(todo))
        if frames.details is False:
            frames.details = len(traced)
    finally:
        if store is not None and store is not src.cache:
            store.close()
        if src.client is None:
            client.close()
