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
import warnings
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from .cache import MIN_MS, CachedRun, RunCache, fingerprint
from .client import ConduitClient
from .errors import ConduitError, UnknownAgentError
from .times import parse_time
from .frames import agents_frame, errors_frame, newest_first, runs_frame, tool_calls_frame
from .records import dedupe, record_problem
from .runframes import FetchStats, RunFrames
from .schema import DETAIL_COLUMNS, RUN_STATUSES, UNFINISHED_STATUSES
from .sampling import choose_traces, strata_codes, trace_weights

__all__ = ["FetchStats", "RunFrames", "fetch_runs", "parse_time"]

#: Trace requests in flight at once; the client's pacing decides how fast they go.
DETAIL_WORKERS = 8
#: Fetched traces are written to the cache at least this often (seconds) ...
FLUSH_SECONDS = 2.0
#: ... or every this many runs, so that an interrupted fetch keeps its work.
FLUSH_RUNS = 200
#: ``details="auto"``: fetch the traces that fit in this many seconds of the client's pace.
AUTO_TRACE_SECONDS = 120.0
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


def _ms(stamp: Any) -> int | None:
    if not isinstance(stamp, str):
        return None
    try:
        parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = pd.Timestamp(stamp).to_pydatetime()
        except (ValueError, TypeError):
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    if not 1678 <= parsed.year < 2262:
        return None  # Go's zero time means "not set"; no run is that old (or that new)
    return int(parsed.timestamp() * 1000)


def _is_interactive() -> bool:
    if "ipykernel" in sys.modules:
        return True
    return bool(getattr(sys.stderr, "isatty", lambda: False)()) and not os.environ.get("CI")


@dataclass
class TraceSource:
    """Where :meth:`RunFrames.fetch_traces` gets more traces: the client (None: one built from
    the environment), the cache (or, without one, the records at hand) and the agents' names."""

    client: ConduitClient | None
    cache: RunCache | str | os.PathLike[str] | None | bool
    source: str
    agent_names: dict[str, str]
    records: dict[str, dict[str, Any]] | None = None

    def fetch_traces(self, frames: RunFrames, run_ids: Any, *, progress: bool | None) -> None:
        _fetch_more_traces(self, frames, run_ids, progress=progress)


@dataclass
class _Candidate:
    """A run in the window: its list summary (None if known only from the cache), its cached
    state, and whether its full record must be fetched."""

    id: str
    agent_id: str
    created_ms: int | None
    summary: dict[str, Any] | None
    cached: CachedRun | None
    fetch: bool = False
    has_trace: bool = False  # its trace is at hand (the cache) and still holds


def _readable_agents(agents: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Agents with a string id, each once; the others as error rows."""
    good: dict[str, dict[str, Any]] = {}
    errors = []
    for agent in agents:
        if isinstance(agent, dict) and isinstance(agent.get("id"), str) and agent["id"]:
            good[agent["id"]] = agent
        else:
            errors.append({"agent_id": None, "agent_run_id": None, "status_code": None, "attempts": None,
                           "error": f"An agent listed by GET /v1/agents has no string id "
                                    f"({str(agent)[:80]!r}); it was left out."})
    return list(good.values()), errors


def _resolve_agents(wanted: Any, agents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if wanted is None:
        return agents
    names = [wanted] if isinstance(wanted, str) else wanted
    try:
        names = list(names)
    except TypeError:
        names = None
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError(
            f"agents must be None (every agent), an agent id or name, or a list of them; got {wanted!r}"
        )
    chosen: dict[str, dict[str, Any]] = {}
    missing = []
    for name in names:
        by_id = [a for a in agents if a.get("id") == name]
        by_name = [a for a in agents if str(a.get("name", "")).casefold() == name.casefold()]
        found = by_id or by_name
        if not found:
            missing.append(name)
        for agent in found:
            chosen[agent["id"]] = agent
    if missing:
        known = ", ".join(f"{a.get('name')!r} ({a.get('id')})" for a in agents) or "none"
        raise UnknownAgentError(
            f"No agent with the id or name {', '.join(map(repr, missing))} in this workspace. "
            f"Agents: {known}.",
            endpoint="GET /v1/agents",
        )
    return list(chosen.values())


class _Fetch:
    def __init__(self, client: ConduitClient, store: RunCache | None, *, since_ms: int | None,
                 until_ms: int | None, statuses: tuple[str, ...], details: bool | int | str,
                 max_runs: int | None, progress: bool, agent_names: dict[str, str], seed: int = 0,
                 refresh: bool = False) -> None:
        self.client = client
        self.refresh = refresh  # list the whole window and fetch every run's details again
        self.store = store
        self.source = f"{client.base_url}#{client.workspace_id or ''}"
        self.since_ms = since_ms
        self.until_ms = until_ms
        self.statuses = statuses
        self.details = details
        self.seed = seed
        self.max_runs = max_runs
        self.progress = progress
        self.agent_names = agent_names
        self.stats = FetchStats()
        self.errors: list[dict[str, Any]] = []
        self.records: dict[str, dict[str, Any]] = {}  # full records fetched in this call

    def turn_away(self, agent_id: str | None, record: Any, problem: str, where: str) -> None:
        """A record that cannot be framed or cached: a row of errors, with the reason."""
        run_id = record.get("id") if isinstance(record, Mapping) else None
        self.errors.append({
            "agent_id": agent_id, "agent_run_id": run_id if isinstance(run_id, str) else None,
            "status_code": None, "attempts": None,
            "error": f"A run {where} could not be read: {problem}. It was left out (and not cached).",
        })

    def good(self, agent_id: str, page: list[Any], where: str) -> list[dict[str, Any]]:
        """The page's readable records, each once (a run listed twice: the later copy)."""
        ok = []
        for record in page:
            problem = record_problem(record)
            if problem is None:
                ok.append(record)
            else:
                self.turn_away(agent_id, record, problem, where)
        return dedupe(ok)

    # -- listing --------------------------------------------------------------------------

    def _covered_to_since(self, intervals: list[tuple[int, int]], ms: int) -> int | None:
        """The low end of a listed-before interval holding ``ms`` that reaches back to ``since``."""
        for lo, hi in intervals:
            if lo <= ms <= hi and (lo == MIN_MS or (self.since_ms is not None and lo <= self.since_ms)):
                return lo
        return None

    def _still_unfinished(self, agent_id: str) -> dict[str, dict[str, Any]]:
        """The agent's runs now accepted or running, from the status-filtered list pages."""
        found: dict[str, dict[str, Any]] = {}
        for status in UNFINISHED_STATUSES:  # in lifecycle order: a run moving on is still seen
            for page in self.client.iter_run_pages(agent_id, status=status):
                self.stats.list_requests += 1
                # Unreadable records are left to the main listing, which reports them.
                found.update((r["id"], r) for r in page if record_problem(r) is None and r.get("status") == status)
        return found

    def _stop_floor(self, agent_id: str, ms: int, listed: Mapping[str, Any],
                    unfinished: dict[str, int | None], refreshed: dict[str, dict[str, Any]]) -> int | None:
        """Where listing may stop, at the first already-listed run (created at ``ms``): at once
        unless a run that was unfinished and is older has finished since; then just past the
        oldest such run (its new summary is on the way down). None means at once."""
        older = {i: m for i, m in unfinished.items() if i not in listed and m is not None and m < ms}
        if not older:
            return None
        still = self._still_unfinished(agent_id)
        if self.store and still:
            self.store.put(self.source, list(still.values()), detailed=False, agent_names=self.agent_names)
        refreshed.update((i, still[i]) for i in older if i in still)
        finished = [m for i, m in older.items() if i not in still]
        return min(finished) if finished else None

    def list_agent(self, agent_id: str, bar: Any) -> list[_Candidate]:
        status_key = self.statuses[0] if len(self.statuses) == 1 else ""
        keys = [""] if not status_key else [status_key, ""]
        # With refresh, nothing counts as listed before: the whole window is listed again.
        intervals = self.store.coverage(self.source, agent_id, keys) if self.store and not self.refresh else []
        # Runs of the window that were unfinished when last seen: listing goes on past the stop
        # point only as far as the oldest of them that has finished since.
        unfinished = ({c.id: c.created_ms for c in self.store.select(self.source, agent_id, since_ms=self.since_ms,
                                                                    until_ms=self.until_ms) if not c.finished}
                      if self.store else {})
        refreshed: dict[str, dict[str, Any]] = {}
        floor: int | None = None
        floor_known = False
        fresh: list[_Candidate] = []
        listed: dict[str, _Candidate] = {}
        complete = True
        newest_ms: int | None = None
        low_ms: int | None = None
        stopped_on_cache: int | None = None
        listed_all = True
        try:
            for page in self.client.iter_run_pages(agent_id, status=status_key or None):
                self.stats.list_requests += 1
                if bar is not None:
                    bar.update(1)
                readable = self.good(agent_id, page, f"listed for agent {agent_id}")
                # A run turned away must be listed again next time: no coverage for this pass.
                complete = complete and len(readable) == len(page)
                page = readable
                known = self.store.lookup(self.source, [r["id"] for r in page]) if self.store else {}
                seen: list[dict[str, Any]] = []
                stop = False
                for summary in page:
                    ms = _ms(summary.get("created_at"))
                    if ms is not None:
                        newest_ms = ms if newest_ms is None else max(newest_ms, ms)
                    if self.until_ms is not None and ms is not None and ms > self.until_ms:
                        seen.append(summary)
                        continue
                    if self.since_ms is not None and ms is not None and ms < self.since_ms:
                        low_ms, stop = ms, True
                        break
                    cached = known.get(summary["id"])
                    if (cached is not None and ms is not None and cached.finished
                            and cached.status == summary.get("status")):
                        lo = self._covered_to_since(intervals, ms)
                        if lo is not None:
                            if not floor_known:
                                floor = self._stop_floor(agent_id, ms, listed, unfinished, refreshed)
                                floor_known = True
                            if floor is None or ms < floor:
                                low_ms, stopped_on_cache, stop = lo, ms, True
                                break
                    seen.append(summary)
                    if self.statuses and summary.get("status") not in self.statuses:
                        continue
                    if summary["id"] in listed:  # listed again (pages shift as runs arrive)
                        listed[summary["id"]].summary = summary
                        continue
                    listed[summary["id"]] = candidate = _Candidate(summary["id"], agent_id, ms, summary, cached)
                    fresh.append(candidate)
                    if self.max_runs and len(fresh) >= self.max_runs:
                        low_ms, stop = ms, True
                        break
                if self.store and seen:
                    self.store.put(self.source, seen, detailed=False, agent_names=self.agent_names)
                if stop:
                    listed_all = False
                    break
        except ConduitError as exc:
            self.errors.append({"agent_id": agent_id, "agent_run_id": None,
                                "status_code": getattr(exc, "status_code", None),
                                "error": str(exc), "attempts": getattr(exc, "attempts", None)})
            return fresh
        if listed_all:
            low_ms = MIN_MS
        if self.store and newest_ms is not None and low_ms is not None and complete:
            self.store.add_coverage(self.source, agent_id, status_key, low_ms, newest_ms)
        if stopped_on_cache is None or not self.store:
            return fresh
        # Below the stop point everything was listed before: take it from the cache (with the
        # new summaries of runs still unfinished).
        until = stopped_on_cache if self.until_ms is None else min(stopped_on_cache, self.until_ms)
        have = {c.id for c in fresh}
        below = [
            _Candidate(c.id, agent_id, c.created_ms, refreshed.get(c.id), c)
            for c in self.store.select(self.source, agent_id, since_ms=self.since_ms, until_ms=until)
            if c.id not in have
            and (not self.statuses or c.status in self.statuses or not c.finished)
        ]
        return fresh + below

    # -- traces ---------------------------------------------------------------------------

    def plan(self, candidates: list[_Candidate]) -> None:
        """Mark the runs whose stored trace still holds, and those whose trace to fetch."""
        for c in candidates:
            cached = c.cached
            if cached is None or not cached.detailed or self.refresh:  # refresh: stored traces may be stale
                c.has_trace = False
            elif c.summary is None:  # known only from the cache
                c.has_trace = cached.finished
            else:
                # Stored details still hold if the run had finished (finished runs do not
                # change) or if its summary has not changed since they were fetched.
                c.has_trace = ((cached.finished and cached.status == c.summary.get("status"))
                               or cached.fingerprint == fingerprint(c.summary))
            self.stats.cache_hits += (cached is not None and self.details is not False
                                      and (c.has_trace or c.summary is None))
        if self.details is False:
            return
        have = np.array([c.has_trace for c in candidates], dtype=bool)
        missing = int((~have).sum())
        total = self.trace_target(len(candidates), missing)
        if total >= len(candidates):
            chosen = ~have
        else:
            frame = pd.DataFrame({
                "id": [c.id for c in candidates],
                "agent_id": [c.agent_id for c in candidates],
                "disposition": self._dispositions(candidates),
                "status": [(c.summary or {}).get("status") if c.summary is not None
                           else c.cached.status for c in candidates],
            })
            strata = int(strata_codes(frame).max()) + 1 if len(frame) else 0
            if total < strata:
                asked = "details=\"auto\" (about two minutes of the pace)" if self.details == "auto" \
                    else f"details={self.details}"
                warnings.warn(f"{asked} is {total:,} traces, fewer than the {strata:,} strata (agent x "
                              f"disposition x status) of these runs: raised to one trace per stratum, "
                              f"{strata:,} traces", UserWarning, stacklevel=4)
            chosen = choose_traces(frame, have, total, seed=self.seed)
        for c, fetch in zip(candidates, chosen):
            c.fetch = bool(fetch)

    def trace_target(self, runs: int, missing: int) -> int:
        """How many runs of the window should carry a trace after this fetch."""
        if self.details is True:
            return runs
        if self.details == "auto":
            budget = max(1, round(AUTO_TRACE_SECONDS * self.client.limiter.requests_per_minute / 60))
            return runs if missing <= budget else budget
        return int(self.details)

    def _dispositions(self, candidates: list[_Candidate]) -> list[Any]:
        """Each run's disposition: from its summary, or from the cache for runs known only there."""
        only_cached = [c.id for c in candidates if c.summary is None]
        stored: dict[str, Any] = {}
        if only_cached and self.store is not None:
            runs, _ = self.store.load(self.source, only_cached)
            stored = dict(zip(runs["id"].astype(object), runs["disposition"].astype(object)))
        return [c.summary.get("disposition") if c.summary is not None else stored.get(c.id) for c in candidates]

    def fetch_details(self, candidates: list[_Candidate]) -> set[str]:
        """Fetch the full records of the runs that need them, concurrently within the pace.
        Returns the ids that failed (they are in the errors table)."""
        todo = [c for c in candidates if c.fetch]
        failed: set[str] = set()
        if not todo:
            return failed
        bar = _bar(self.progress, total=len(todo), desc="traces", unit="run")
        buffer: list[dict[str, Any]] = []
        last_flush = time.monotonic()

        def flush() -> None:
            nonlocal last_flush
            if self.store and buffer:
                self.store.put(self.source, buffer, detailed=True, agent_names=self.agent_names)
            buffer.clear()
            last_flush = time.monotonic()

        pool = ThreadPoolExecutor(max_workers=min(DETAIL_WORKERS, len(todo)),
                                  thread_name_prefix="conduit-trace")
        stopping = threading.Event()

        def get_run(agent_id: str, run_id: str) -> dict[str, Any] | None:
            # After an interrupt, workers already waiting for their turn send nothing.
            return None if stopping.is_set() else self.client.get_run(agent_id, run_id)

        pending: dict[Future, _Candidate] = {}
        try:
            for c in todo:
                pending[pool.submit(get_run, c.agent_id, c.id)] = c
            while pending:
                done, _ = wait(pending, timeout=FLUSH_SECONDS, return_when=FIRST_COMPLETED)
                for future in done:
                    c = pending.pop(future)
                    self.stats.detail_requests += 1
                    try:
                        record = future.result()
                    except ConduitError as exc:
                        failed.add(c.id)
                        self.errors.append({"agent_id": c.agent_id, "agent_run_id": c.id,
                                            "status_code": getattr(exc, "status_code", None),
                                            "error": str(exc), "attempts": getattr(exc, "attempts", None)})
                    else:
                        problem = record_problem(record)
                        if problem is None and record["id"] != c.id:
                            problem = f"asked for run {c.id}, the API answered with run {record['id']}"
                        if problem is not None:
                            failed.add(c.id)
                            self.turn_away(c.agent_id, {"id": c.id}, problem, "fetched by its id")
                        else:
                            self.records[c.id] = record
                            buffer.append(record)
                    if bar is not None:
                        bar.update(1)
                if len(buffer) >= FLUSH_RUNS or time.monotonic() - last_flush >= FLUSH_SECONDS:
                    flush()
        finally:
            # On an interrupt: stop what has not started, keep what has arrived.
            stopping.set()
            for future in pending:
                future.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            flush()
            if bar is not None:
                bar.close()
        return failed


def _bar(enabled: bool, **kwargs: Any) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(leave=False, **kwargs)


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
        :func:`tool_stats` and the tool plots use to estimate numbers for every run.
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
    show = _is_interactive() if progress is None else progress

    own_client = client is None
    client = client or ConduitClient()
    store = None
    try:
        if cache is not False:
            store = cache if isinstance(cache, RunCache) else RunCache(None if cache in (None, True) else cache)
            client.share_pace_beside(store.path)  # processes sharing a cache share the pace
        requests_before = client.stats.requests
        limited_before = client.stats.rate_limited
        agent_records, agent_errors = _readable_agents(client.iter_agents())
        selected = _resolve_agents(agents, agent_records)
        names = {a["id"]: a.get("name") for a in agent_records}
        job = _Fetch(client, store,
                     since_ms=None if since_ts is None else int(since_ts.value // 1_000_000),
                     until_ms=None if until_ts is None else int(until_ts.value // 1_000_000),
                     statuses=statuses, details=details, max_runs=max_runs, progress=show,
                     agent_names=names, seed=seed, refresh=refresh)
        job.errors += agent_errors
        job.stats.list_requests += math.ceil(max(len(agent_records), 1) / 100)
        candidates = _list(job, selected, show, max_runs)
        job.plan(candidates)
        failed = job.fetch_details(candidates)
        keep = [c for c in candidates if c.id not in failed]
        runs, calls = _frames(job, keep, names)
        if statuses:  # a run refreshed from the cache may have changed status
            mask = runs["status"].isin(statuses).to_numpy()
            dropped = set(runs.loc[~mask, "id"])
            runs = runs[mask].reset_index(drop=True)
            if dropped:
                calls = calls[~calls["agent_run_id"].isin(dropped)].reset_index(drop=True)
        traced = set() if details is False else {c.id for c in keep if c.has_trace or c.id in job.records}
        runs, calls = _finish(runs, calls, traced, names)
        if store is not None:
            store.compact(job.source)
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
            trace_source=TraceSource(
                client=None if own_client else client,
                cache=cache if isinstance(cache, RunCache) or cache is False else (store.path if store else None),
                source=job.source, agent_names=names,
                records=None if store is not None else {c.id: job.records.get(c.id) or c.summary for c in keep},
            ),
        )
        _tell_once(frames, since)
        return frames
    finally:
        if store is not None and store is not cache:
            store.close()
        if own_client:
            client.close()


def _list(job: _Fetch, selected: list[dict[str, Any]], show: bool, max_runs: int | None) -> list[_Candidate]:
    """Every run of the window over the selected agents, newest first."""
    bar = _bar(show, desc="pages", unit="page")
    candidates: list[_Candidate] = []
    try:
        for agent in selected:
            candidates += job.list_agent(agent["id"], bar)
    finally:
        if bar is not None:
            bar.close()
    # A run listed under two agents (or twice) is fetched and framed once: the later copy.
    candidates = list({c.id: c for c in candidates}.values())
    candidates.sort(key=lambda c: -(c.created_ms if c.created_ms is not None else MIN_MS))
    return candidates[:max_runs] if max_runs else candidates


def _tell_once(frames: RunFrames, since: Any) -> None:
    """Say once a session per workspace that traces are a sample, and how to get the rest."""
    if frames.complete or frames.details is False or frames.source in _TOLD:
        return
    _TOLD.add(frames.source)
    missing = len(frames.runs) - frames.traced
    window = f" --since {since}" if isinstance(since, str) else ""
    print(f"conduit-notebook: traces for {frames.traced:,} of {len(frames.runs):,} runs (a stratified "
          f"sample within the budget); tool numbers are estimated from them. The other {missing:,} "
          f"traces: frames.fetch_traces(), or `conduit-notebook sync{window}` in a terminal "
          "(one request a run, within the workspace's pace).", file=sys.stderr)


def _finish(runs: pd.DataFrame, calls: pd.DataFrame, traced_ids: set[str],
            names: Mapping[str, str], sampled: Mapping[str, float] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Agent names as the workspace has them now, and traces only where they count: the detail
    columns and tool calls of runs without a (current) trace are left out, and each traced run
    gets its ``trace_weight``. Given ``sampled`` (the random sample's weights by run id, when
    traces are added by hand), those runs keep their weights and the other traced runs get 0:
    picked, not drawn, they stay out of the estimates (all traced: every weight 1)."""
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
        calls.insert(calls.columns.get_loc("agent_id") + 1, "agent_name", names_of_calls)
    traced = runs["id"].astype(object).isin(traced_ids).to_numpy()
    if not traced.all():
        for column in DETAIL_COLUMNS:
            if runs[column].notna().to_numpy()[~traced].any():
                runs[column] = runs[column].where(traced)
        if len(calls):
            calls = calls[calls["agent_run_id"].astype(object).isin(traced_ids).to_numpy()].reset_index(drop=True)
    if sampled is None or traced.all():
        runs["trace_weight"] = trace_weights(runs, traced)
    else:
        kept = runs["id"].astype(object).map(dict(sampled)).to_numpy(dtype=float, na_value=np.nan)
        runs["trace_weight"] = np.where(traced, np.nan_to_num(kept, nan=0.0), np.nan)
    return runs, calls


def _frames(job: _Fetch, keep: list[_Candidate], names: Mapping[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    ids = [c.id for c in keep]
    if job.store is not None:
        runs, calls = job.store.load(job.source, ids)
    else:
        records = [job.records.get(c.id) or c.summary for c in keep]
        runs, calls = _from_records([r for r in records if r is not None], names)
    return runs, calls


def _from_records(records: list[dict[str, Any]], names: Mapping[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    return newest_first(runs_frame(records, agent_names=names), tool_calls_frame(records))


def _open_store(cache: Any) -> RunCache | None:
    if cache is False:
        return None
    return cache if isinstance(cache, RunCache) else RunCache(cache)


def _fetch_more_traces(src: TraceSource, frames: RunFrames, run_ids: Any, *, progress: bool | None) -> None:
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
    store = _open_store(src.cache)
    try:
        show = _is_interactive() if progress is None else progress
        job = _Fetch(client, store, since_ms=None, until_ms=None, statuses=(), details=True, max_runs=None,
                     progress=show, agent_names=src.agent_names)
        job.source = src.source
        agent_of = dict(zip(runs["id"].astype(object), runs["agent_id"].astype(object)))
        known = store.lookup(src.source, missing) if store is not None else {}
        todo = []
        for run_id in missing:
            cached = known.get(run_id)
            c = _Candidate(run_id, agent_of[run_id], None, None, cached)
            c.has_trace = cached is not None and cached.detailed and cached.finished
            c.fetch = not c.has_trace
            todo.append(c)
        failed = job.fetch_details(todo)
        traced = set(runs.loc[weight.notna().to_numpy(), "id"].astype(object))
        traced |= {c.id for c in todo if c.id not in failed}
        ids = list(runs["id"].astype(object))
        if store is not None:
            new_runs, new_calls = store.load(src.source, ids)
        else:
            src.records.update(job.records)
            new_runs, new_calls = _from_records([src.records[i] for i in ids if i in src.records], src.agent_names)
        random_part = weight.to_numpy(dtype=float, na_value=np.nan) > 0
        sampled = dict(zip(runs["id"].astype(object)[random_part], weight.to_numpy(dtype=float)[random_part]))
        frames.runs, frames.tool_calls = _finish(new_runs, new_calls, traced, src.agent_names, sampled)
        if job.errors:
            frames.errors = pd.concat([frames.errors, errors_frame(job.errors)], ignore_index=True)
        frames.stats.detail_requests += job.stats.detail_requests
        if frames.details is False:
            frames.details = len(traced)
    finally:
        if store is not None and store is not src.cache:
            store.close()
        if src.client is None:
            client.close()
