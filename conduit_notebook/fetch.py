"""fetch_runs: runs and tool calls of a time window as DataFrames, through the local cache.

>>> from conduit_notebook import fetch_runs
>>> frames = fetch_runs(since="7d")              # every agent, the last 7 days, with traces
>>> frames.runs.groupby("agent_name", observed=True)["total_cost"].sum()
>>> frames.tool_calls["name"].value_counts()

Listing is newest first and stops as soon as runs are older than ``since``; a run's trace costs
one request and is fetched once, ever (finished runs do not change); a second call over the
same window lists until it meets runs it already has and makes no trace request.
"""

from __future__ import annotations

import math
import os
import re
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pandas as pd

from .cache import MIN_MS, CachedRun, RunCache, fingerprint
from .client import RUN_STATUSES, ConduitClient
from .errors import ConduitError, NotFoundError
from .frames import DETAIL_COLUMNS, agents_frame, errors_frame, runs_frame, tool_calls_frame
from .records import dedupe, record_problem

__all__ = ["FetchStats", "RunFrames", "fetch_runs", "parse_time"]

#: Trace requests in flight at once; the client's pacing decides how fast they go.
DETAIL_WORKERS = 8
#: Fetched traces are written to the cache at least this often (seconds) ...
FLUSH_SECONDS = 2.0
#: ... or every this many runs, so that an interrupted fetch keeps its work.
FLUSH_RUNS = 200

_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_SPAN_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_TIME_FORMS = ("a datetime (naive means UTC), a date, an ISO 8601 string such as "
               "'2026-11-01T00:00:00Z', or a span back from now such as '7d', '12h', '30m'")


def parse_time(value: Any, name: str = "since", *, now: datetime | None = None,
               end_of_day: bool = False) -> pd.Timestamp | None:
    """A ``since``/``until`` value -> a UTC timestamp (None stays None).

    Accepts a datetime (naive means UTC), a date (midnight UTC; with ``end_of_day``, the last
    moment of that day), an ISO 8601 string, or a span back from now: ``"7d"``, ``"12h"``,
    ``"30m"``, ``"90s"``, ``"2w"``. Anything else raises ``ValueError`` naming ``name``.
    """
    if value is None:
        return None
    now = now or datetime.now(timezone.utc)
    if isinstance(value, str):
        span = _SPAN.match(value)
        if span:
            amount, unit = float(span.group(1)), span.group(2).lower()
            return pd.Timestamp(now - timedelta(**{_SPAN_UNITS[unit]: amount})).tz_convert("UTC")
        try:
            parsed = pd.Timestamp(value.strip())
        except (ValueError, TypeError):
            parsed = None
        if parsed is None or pd.isna(parsed):
            raise ValueError(f"{name} must be {_TIME_FORMS}; got {value!r}")
        return parsed.tz_localize("UTC") if parsed.tzinfo is None else parsed.tz_convert("UTC")
    if isinstance(value, (datetime, pd.Timestamp)):
        stamp = pd.Timestamp(value)
        if pd.isna(stamp):
            raise ValueError(f"{name} must be {_TIME_FORMS}; got {value!r}")
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    if isinstance(value, date):
        stamp = pd.Timestamp(value).tz_localize("UTC")
        return stamp + pd.Timedelta(days=1) - pd.Timedelta(milliseconds=1) if end_of_day else stamp
    raise ValueError(f"{name} must be {_TIME_FORMS}; got {value!r}")


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
class FetchStats:
    """What one fetch cost: HTTP requests (retries included), list pages, trace requests,
    runs served from the cache without a request, and wall time."""

    requests: int = 0
    list_requests: int = 0
    detail_requests: int = 0
    cache_hits: int = 0
    rate_limited: int = 0
    elapsed_s: float = 0.0


@dataclass
class RunFrames:
    """The result of :func:`fetch_runs`: ``runs``, ``tool_calls``, ``agents`` and ``errors``.

    ``errors`` lists every run or page that could not be fetched after retries: a listed run is
    either in ``runs`` or in ``errors``, never silently dropped.
    """

    runs: pd.DataFrame
    tool_calls: pd.DataFrame
    agents: pd.DataFrame
    errors: pd.DataFrame
    since: pd.Timestamp | None = None
    until: pd.Timestamp | None = None
    details: bool = True
    source: str = ""
    stats: FetchStats = field(default_factory=FetchStats)

    def _span(self) -> str:
        created = self.runs["created_at"].dropna()
        if created.empty:
            return "no runs"
        return f"{created.min():%Y-%m-%d %H:%M} to {created.max():%Y-%m-%d %H:%M} UTC"

    def _lines(self) -> list[tuple[str, str]]:
        s = self.stats
        agents = self.runs["agent_id"].nunique()
        return [
            ("runs", f"{len(self.runs):,} from {agents} agent{'s' if agents != 1 else ''}"),
            ("time span", self._span()),
            ("tool calls", f"{len(self.tool_calls):,}" if self.details else "not fetched (details=False)"),
            ("errors", f"{len(self.errors):,}"),
            ("requests", f"{s.requests:,} ({s.list_requests:,} list, {s.detail_requests:,} trace"
                         + (f", {s.rate_limited} rate-limited" if s.rate_limited else "") + ")"),
            ("cache hits", f"{s.cache_hits:,}"),
            ("took", f"{s.elapsed_s:.1f} s"),
        ]

    def __repr__(self) -> str:
        body = "\n".join(f"  {k:<10} {v}" for k, v in self._lines())
        return f"RunFrames\n{body}"

    def _repr_html_(self) -> str:
        import html

        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>"
            f"{html.escape(v)}</td></tr>" for k, v in self._lines()
        )
        return (f"<div><b>RunFrames</b> <code>.runs</code>, <code>.tool_calls</code>, "
                f"<code>.agents</code>, <code>.errors</code><table>{rows}</table></div>")

    def to_parquet(self, directory: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Write runs and tool calls as Parquet datasets partitioned by date and agent.

        See :func:`conduit_notebook.read_parquet`; DuckDB, Spark and Dask read the same files.
        """
        from .export import to_parquet

        to_parquet(self, directory, overwrite=overwrite)


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
        raise NotFoundError(
            f"No agent with the id or name {', '.join(map(repr, missing))} in this workspace. "
            f"Agents: {known}.",
            endpoint="GET /v1/agents",
        )
    return list(chosen.values())


class _Fetch:
    def __init__(self, client: ConduitClient, store: RunCache | None, *, since_ms: int | None,
                 until_ms: int | None, statuses: tuple[str, ...], details: bool,
                 max_runs: int | None, progress: bool, agent_names: dict[str, str]) -> None:
        self.client = client
        self.store = store
        self.source = f"{client.base_url}#{client.workspace_id or ''}"
        self.since_ms = since_ms
        self.until_ms = until_ms
        self.statuses = statuses
        self.details = details
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

    def list_agent(self, agent_id: str, bar: Any) -> list[_Candidate]:
        status_key = self.statuses[0] if len(self.statuses) == 1 else ""
        keys = [""] if not status_key else [status_key, ""]
        intervals = self.store.coverage(self.source, agent_id, keys) if self.store else []
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
                            and cached.status == summary.get("status")
                            and (cached.detailed or not self.details)):
                        lo = self._covered_to_since(intervals, ms)
                        if lo is not None:
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
        # Below the stop point everything was listed before: take it from the cache.
        until = stopped_on_cache if self.until_ms is None else min(stopped_on_cache, self.until_ms)
        have = {c.id for c in fresh}
        below = [
            _Candidate(c.id, agent_id, c.created_ms, None, c)
            for c in self.store.select(self.source, agent_id, since_ms=self.since_ms, until_ms=until)
            if c.id not in have
            and (not self.statuses or c.status in self.statuses or not c.finished)
        ]
        return fresh + below

    # -- traces ---------------------------------------------------------------------------

    def plan(self, candidates: list[_Candidate]) -> None:
        for c in candidates:
            cached = c.cached
            if c.summary is None:  # known only from the cache
                c.fetch = not cached.finished or (self.details and not cached.detailed)
            else:
                # Stored details still hold if the run had finished (finished runs do not
                # change) or if its summary has not changed since they were fetched.
                c.fetch = self.details and not (
                    cached is not None and cached.detailed
                    and ((cached.finished and cached.status == c.summary.get("status"))
                         or cached.fingerprint == fingerprint(c.summary))
                )
            if not c.fetch:
                self.stats.cache_hits += cached is not None and (c.summary is None or self.details)

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


def fetch_runs(
    agents: str | Sequence[str] | None = None,
    *,
    client: ConduitClient | None = None,
    since: Any = None,
    until: Any = None,
    status: str | Sequence[str] | None = None,
    details: bool = True,
    max_runs: int | None = None,
    cache: RunCache | str | os.PathLike[str] | bool | None = None,
    progress: bool | None = None,
) -> RunFrames:
    """Fetch runs (and their tool calls) into DataFrames, through the local cache.

    Parameters
    ----------
    agents:
        None for every agent of the workspace; an agent id or name (exact, case-insensitive),
        or a list of them. One that is not found raises :class:`NotFoundError` naming it.
    client:
        A :class:`ConduitClient`; by default one is built from the environment
        (``CONDUIT_API_TOKEN``, ``CONDUIT_BASE_URL``).
    since, until:
        The window on ``created_at``, both ends included: a datetime (naive means UTC), a date
        (``until`` then means the end of that day), an ISO 8601 string, or a span back from now
        such as ``"7d"``, ``"12h"``, ``"30m"``. Listing stops at the first run older than
        ``since``.
    status:
        ``"accepted"``, ``"running"``, ``"completed"``, ``"failed"``, or a list of them.
    details:
        True fetches every run's full record (response, reflection, tool trace: one request a
        run, concurrently within the client's pace, and only once for a finished run). False
        uses the list summaries only (one request per 100 runs); the detail-only columns are
        then empty and ``tool_calls`` has no rows.
    max_runs:
        At most this many runs, the newest, over all agents.
    cache:
        None (or True) for the default cache file (:func:`cache_info` says where), a path for
        another file, False for none.
    progress:
        Progress bars (tqdm: widgets in Jupyter, text in a terminal); None means on when
        interactive.

    Works from a notebook cell (with an event loop running): it uses threads, not asyncio.
    Interrupting it keeps everything fetched so far in the cache; the next call resumes.

    >>> frames = fetch_runs(["Reservations", "Billing"], since="7d", status="completed")
    >>> frames.runs, frames.tool_calls, frames.errors
    """
    started = time.monotonic()
    since_ts = parse_time(since, "since")
    until_ts = parse_time(until, "until", end_of_day=isinstance(until, date) and not isinstance(until, datetime))
    if since_ts is not None and until_ts is not None and since_ts > until_ts:
        raise ValueError(f"since ({since_ts}) is after until ({until_ts})")
    statuses = _statuses(status)
    if not isinstance(details, bool):
        raise ValueError(f"details must be True or False, got {details!r}")
    if max_runs is not None and (isinstance(max_runs, bool) or not isinstance(max_runs, int) or max_runs < 1):
        raise ValueError(f"max_runs must be a whole number >= 1, or None; got {max_runs!r}")
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
        requests_before = client.stats.requests
        limited_before = client.stats.rate_limited
        agent_records, agent_errors = _readable_agents(client.iter_agents())
        selected = _resolve_agents(agents, agent_records)
        names = {a["id"]: a.get("name") for a in agent_records}
        if cache is not False:
            store = cache if isinstance(cache, RunCache) else RunCache(None if cache in (None, True) else cache)
        job = _Fetch(client, store,
                     since_ms=None if since_ts is None else int(since_ts.value // 1_000_000),
                     until_ms=None if until_ts is None else int(until_ts.value // 1_000_000),
                     statuses=statuses, details=details, max_runs=max_runs, progress=show,
                     agent_names=names)
        job.errors += agent_errors
        job.stats.list_requests += math.ceil(max(len(agent_records), 1) / 100)
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
        if max_runs:
            candidates = candidates[:max_runs]
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
        if store is not None:
            store.compact(job.source)
        job.stats.requests = client.stats.requests - requests_before
        job.stats.rate_limited = client.stats.rate_limited - limited_before
        job.stats.elapsed_s = time.monotonic() - started
        chosen = {a["id"] for a in selected}
        return RunFrames(
            runs=runs,
            tool_calls=calls,
            agents=agents_frame([a for a in agent_records if a["id"] in chosen]),
            errors=errors_frame(job.errors),
            since=since_ts,
            until=until_ts,
            details=details,
            source=client.base_url,
            stats=job.stats,
        )
    finally:
        if store is not None and store is not cache:
            store.close()
        if own_client:
            client.close()


def _frames(job: _Fetch, keep: list[_Candidate], names: Mapping[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    ids = [c.id for c in keep]
    if job.store is not None:
        runs, calls = job.store.load(job.source, ids)
    else:
        records = [job.records.get(c.id) or c.summary for c in keep]
        records = [r for r in records if r is not None]
        runs = runs_frame(records, agent_names=names)
        calls = tool_calls_frame(records)
        from .cache import _newest_first

        runs, calls = _newest_first(runs, calls)
    if not job.details:
        # Summaries only, whatever the cache holds: the same call gives the same shape.
        for column in DETAIL_COLUMNS:
            runs[column] = runs[column].iloc[0:0].reindex(runs.index)
        calls = tool_calls_frame([])
    # Names as the workspace has them now (an agent may have been renamed).
    runs["agent_name"] = pd.Categorical(
        runs["agent_id"].astype(object).map(dict(names)).where(runs["agent_id"].notna(), None)
    )
    return runs, calls
