"""fetch_runs: runs and tool calls of a time window as DataFrames, through the local cache.

>>> from conduit_notebook import fetch_runs
>>> frames = fetch_runs(since="7d")              # every agent, the last 7 days, with traces
>>> frames.runs.groupby("agent_name", observed=True)["total_cost"].sum()
>>> frames.tool_calls["name"].value_counts()

Every run of the window comes from the list pages (100 summaries a request). A run's trace
costs one request of its own and is fetched once, ever (finished runs do not change); with the
default ``details="auto"`` traces are fetched for every run when the missing ones fit in about
two minutes of the client's pace, else for a stratified sample that does (see
:mod:`conduit_notebook.sampling`), and trace-based numbers are estimated from it. A second call
over the same window lists until it meets runs it already has (and past the oldest run that was
still unfinished) and makes no trace request.
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from typing import Any

import pandas as pd

from .cache import RunCache
from .client import BASE_URL_ENV, DEFAULT_BASE_URL, ConduitClient
from .fetch_frames import is_interactive, open_store, records_at_hand, warn_failed_traces, window_frames
from .fetch_job import Candidate, FetchJob
from .fetch_more import TraceSource
from .frames import agent_labels, agents_frame, errors_frame
from .listing import list_window, readable_agents, resolve_agents
from .pacing import DEFAULT_REQUESTS_PER_MINUTE
from .runframes import FetchStats, RunFrames
from .schema import RUN_STATUSES
from .times import parse_time
from .traces import fetch_details, plan_traces

# RunFrames, FetchStats and parse_time were defined here once: still importable from here.
__all__ = ["FetchStats", "RunFrames", "fetch_runs", "parse_time"]

DETAILS_FORMS = "True (every trace), False (none), a whole number of runs to trace, or 'auto'"
_TOLD: set[str] = set()  # sources already told that traces are a sample (said once a session)


def _statuses(status: Any) -> tuple[str, ...]:
    if status is None:
        return ()
    values = [status] if isinstance(status, str) else status
    try:
        values = list(values)
    except TypeError:
        values = [status]
    bad = [v for v in values if v not in RUN_STATUSES]
    if bad or not values:
        raise ValueError(
            f"status must be one of {', '.join(RUN_STATUSES)}, or a list of them; got {status!r}"
        )
    return tuple(dict.fromkeys(values))


def _check_details(details: Any, seed: Any) -> None:
    if not (isinstance(details, bool) or details == "auto"
            or (isinstance(details, int) and details >= 1)):
        raise ValueError(f"details must be {DETAILS_FORMS}; got {details!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be a whole number; got {seed!r}")
    if seed != 0 and isinstance(details, bool):
        warnings.warn(f"seed={seed} has no effect with details={details}: there is no sample to take",
                      UserWarning, stacklevel=3)


def fetch_runs(
    agents: str | Sequence[str] | None = None,
    *,
    client: ConduitClient | None = None,
    since: Any = None,
    until: Any = None,
    status: str | Sequence[str] | None = None,
    details: bool | int | str = "auto",
    seed: int = 0,
    max_runs: int | None = None,
    cache: RunCache | str | os.PathLike[str] | bool | None = None,
    progress: bool | None = None,
    refresh: bool = False,
) -> RunFrames:
    """Fetch runs (and their tool calls) into DataFrames, through the local cache.

    Parameters
    ----------
    agents:
        None for every agent of the workspace; an agent id or name (exact, case-insensitive),
        or a list of them. One that is not found raises :class:`UnknownAgentError` (a
        :class:`NotFoundError`) naming it and listing the agents there are.
    client:
        A :class:`ConduitClient`; by default one is built from the environment
        (``CONDUIT_API_TOKEN``, ``CONDUIT_BASE_URL``).
    since, until:
        The window on ``created_at``, both ends included: a datetime (naive means UTC), a
        whole day as a ``datetime.date`` or a string such as ``"2026-11-28"`` (both mean the
        same: ``since`` from its first moment, ``until`` to its last, so
        ``since="2026-11-28", until="2026-11-28"`` is that day), an ISO 8601 timestamp, or a
        span back from now such as ``"7d"``, ``"12h"``, ``"30m"``. Listing stops at the first
        run older than ``since``.
    status:
        ``"accepted"``, ``"running"``, ``"completed"``, ``"failed"``, or a list of them.
    details:
        Which runs get their trace (response, reflection, tool calls: one request a run,
        concurrently within the client's pace, once for a finished run). ``runs`` always holds
        every run of the window, from the list pages (one request per 100 runs).
        ``"auto"`` (default): every trace when the missing ones fit in about two minutes of the
        client's pace (240 at 120 a minute), else a stratified sample of that many (agent x
        disposition x status, every stratum represented), said once. ``True``: every trace.
        An int N: a stratified sample of N runs. A budget below one trace per stratum is raised
        to one per stratum, with a warning. ``False``: none (the detail-only columns are
        empty, ``tool_calls`` has no rows, and no trace request is sent). Traces already in the
        cache count and cost nothing; a second call with the same budget asks for no trace.
        Each traced run carries ``trace_weight`` (its stratum's runs / traced runs), which
        :func:`tool_stats` and the tool plots use to estimate numbers for every run. A trace
        that fails after retries leaves its run in ``runs`` (the list page's fields,
        ``trace_failed`` True) and a row in ``errors``, with a warning; estimates treat it as
        non-response (:func:`conduit_notebook.sampling.trace_failures`).
    seed:
        Which runs a sample takes (the same seed takes the same runs). Traces already in the
        cache count towards the sample whichever seed took them: once a cache holds a sample,
        another seed keeps those traces and only tops them up. With ``details=True`` or
        ``False`` there is no sample, and a seed other than 0 is warned about.
    max_runs:
        At most this many runs, the newest, over all agents.
    cache:
        None (or True) for the default cache file (:func:`cache_info` says where), a path for
        another file, False for none.
    progress:
        Progress bars (tqdm: widgets in Jupyter, text in a terminal); None means on when
        interactive.
    refresh:
        True lists the whole window again and counts no stored trace as current, so runs'
        full records are fetched again (every run's with ``details=True``; with ``"auto"`` or a
        number, as many as that allows), replacing what the cache holds: for when Conduit
        re-labelled finished runs (a changed disposition or reason). Costs the requests of a
        first fetch; only that window is touched.

    Works from a notebook cell (with an event loop running): it uses threads, not asyncio.
    Interrupting it keeps everything fetched so far in the cache; the next call resumes.

    >>> frames = fetch_runs(["Reservations", "Billing"], since="7d", status="completed")
    >>> frames.runs, frames.tool_calls, frames.errors
    >>> frames.fetch_traces()            # the traces a sample left out, when there is time
    """
    started = time.monotonic()
    since_ts, until_ts, statuses = _check_arguments(since=since, until=until, status=status, details=details,
                                                    seed=seed, max_runs=max_runs, refresh=refresh,
                                                    progress=progress, cache=cache, client=client)
    show = is_interactive() if progress is None else progress

    own_client = client is None
    client = client or ConduitClient()
    store = None
    try:
        store = open_store(client.cache_path if cache is None and client.cache_path else cache)
        if store is not None:
            client.share_pace_beside(store.path)  # processes sharing a cache share the pace
        requests_before = client.stats.requests
        limited_before = client.stats.rate_limited
        agent_records, agent_errors = readable_agents(client.iter_agents())
        selected = resolve_agents(agents, agent_records)
        names = agent_labels({a["id"]: a.get("name") for a in agent_records})  # two agents, one name: told apart
        job = FetchJob(client, store,
                     since_ms=None if since_ts is None else int(since_ts.value // 1_000_000),
                     until_ms=None if until_ts is None else int(until_ts.value // 1_000_000),
                     statuses=statuses, details=details, max_runs=max_runs, progress=show,
                     agent_names=names, seed=seed, refresh=refresh)
        job.errors += agent_errors
        job.stats.list_requests += math.ceil(max(len(agent_records), 1) / 100)
        keep, failed, runs, calls = _fetch_window(job, selected)
        job.stats.requests = client.stats.requests - requests_before
        job.stats.rate_limited = client.stats.rate_limited - limited_before
        job.stats.elapsed_s = time.monotonic() - started
        chosen = {a["id"] for a in selected}
        frames = RunFrames(
            runs=runs,
            tool_calls=calls,
            agents=agents_frame([a for a in agent_records if a["id"] in chosen]),
            errors=errors_frame(job.errors),
            since=since_ts,
            until=until_ts,
            details=details,
            source=client.base_url,
            stats=job.stats,
            trace_source=_trace_source(job, keep, cache, own_client=own_client),
        )
        _tell_once(frames, since, client)
        warn_failed_traces(len(failed), sum(c.fetch for c in keep))
        return frames
    finally:
        if store is not None and store is not cache:
            store.close()
        if own_client:
            client.close()


def _fetch_window(job: FetchJob, selected: list[dict[str, Any]]
                  ) -> tuple[list[Candidate], set[str], pd.DataFrame, pd.DataFrame]:
    """The window's steps: list its runs, plan which traces to fetch, fetch them, and read the
    frames back (the cache compacted after); a run whose trace failed keeps its list page's
    fields (and an errors row). Returns the runs, the failed traces' ids, runs and tool calls."""
    candidates = list_window(job, selected)
    plan_traces(job, candidates)
    failed = fetch_details(job, candidates)
    runs, calls = window_frames(job, candidates, failed)
    if job.store is not None:
        job.store.compact(job.source)
    return candidates, failed, runs, calls


def _trace_source(job: FetchJob, keep: list[Candidate], cache: RunCache | str | os.PathLike[str] | bool | None,
                  *, own_client: bool) -> TraceSource:
    """Where the frames' later fetches go: the same client (None: one of their own, when the
    fetch built its own), the same cache, or without one the records at hand."""
    store = job.store
    return TraceSource(
        client=None if own_client else job.client,
        cache=cache if isinstance(cache, RunCache) or cache is False else (store.path if store else None),
        source=job.source, agent_names=job.agent_names,
        records=None if store is not None else records_at_hand(job, keep),
    )


def _check_arguments(*, since: Any, until: Any, status: Any, details: Any, seed: Any, max_runs: Any,
                     refresh: Any, progress: Any, cache: Any, client: Any
                     ) -> tuple[pd.Timestamp | None, pd.Timestamp | None, tuple[str, ...]]:
    """:func:`fetch_runs`' arguments checked before any request: the window and the statuses,
    or a ValueError naming the argument and what it accepts."""
    since_ts = parse_time(since, "since")
    until_ts = parse_time(until, "until", end_of_day=True)  # a whole day: to its end
    if since_ts is not None and until_ts is not None and since_ts > until_ts:
        raise ValueError(f"since ({since_ts}) is after until ({until_ts})")
    statuses = _statuses(status)
    _check_details(details, seed)
    if max_runs is not None and (isinstance(max_runs, bool) or not isinstance(max_runs, int) or max_runs < 1):
        raise ValueError(f"max_runs must be a whole number >= 1, or None; got {max_runs!r}")
    if not isinstance(refresh, bool):
        raise ValueError(f"refresh must be True or False, got {refresh!r}")
    if progress is not None and not isinstance(progress, bool):
        raise ValueError(f"progress must be True, False or None; got {progress!r}")
    if not (cache is None or isinstance(cache, (bool, str, os.PathLike, RunCache))):
        raise ValueError(f"cache must be None, False, a file path or a RunCache; got {cache!r}")
    if client is not None and not isinstance(client, ConduitClient):
        raise ValueError(f"client must be a ConduitClient or None; got {type(client).__name__}")
    return since_ts, until_ts, statuses


def _tell_once(frames: RunFrames, since: Any, client: ConduitClient) -> None:
    """Say once a session per workspace that traces are a sample, and how to get the rest."""
    # Every trace asked for (not a sample): those that failed are warned about on their own.
    if (frames.traced + frames.trace_failures >= len(frames.runs) or frames.details is False
            or frames.source in _TOLD):
        return
    _TOLD.add(frames.source)
    missing = len(frames.runs) - frames.traced
    sample = ("a stratified sample within the budget of about two minutes of the pace" if frames.details == "auto"
              else f"a stratified sample: {frames.details:,} asked for, at least one per stratum")
    print(f"conduit-notebook: traces for {frames.traced:,} of {len(frames.runs):,} runs ({sample}); tool "
          f"numbers are estimated from them. The other {missing:,} traces: frames.fetch_traces(), or "
          f"`{sync_command(client, since)}` in a terminal (one request a run, within the workspace's pace).",
          file=sys.stderr)


def sync_command(client: ConduitClient, since: Any) -> str:
    """The ``conduit-notebook sync`` that fetches the same workspace's traces at the same pace."""
    words = ["conduit-notebook sync"]
    if isinstance(since, str):
        words.append(f"--since {since}")
    if client.base_url != (os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/"):
        words.append(f"--base-url {client.base_url}")
    if client.limiter.limit != DEFAULT_REQUESTS_PER_MINUTE:
        words.append(f"--rpm {client.limiter.limit:g}")
    return " ".join(words)
