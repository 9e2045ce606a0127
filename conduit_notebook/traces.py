"""Which runs get their trace, and fetching them: every missing trace when they fit in the
budget, else a stratified sample (:mod:`conduit_notebook.sampling`); one request a run,
:data:`DETAIL_WORKERS` at once within the client's pace, written to the cache as they come."""

from __future__ import annotations

import threading
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import numpy as np
import pandas as pd

from .cache import fingerprint
from .errors import ConduitError
from .fetch_job import Candidate, FetchJob, progress_bar
from .records import record_problem
from .sampling import choose_traces, strata_codes

__all__ = ["AUTO_TRACE_SECONDS", "fetch_details", "plan_traces", "trace_target"]

#: Trace requests in flight at once; the client's pacing decides how fast they go.
DETAIL_WORKERS = 8
#: Fetched traces are written to the cache at least this often (seconds) ...
FLUSH_SECONDS = 2.0
#: ... or every this many runs, so that an interrupted fetch keeps its work.
FLUSH_RUNS = 200
#: ``details="auto"``: fetch the traces that fit in this many seconds of the client's pace.
AUTO_TRACE_SECONDS = 120.0


def plan_traces(job: FetchJob, candidates: list[Candidate]) -> None:
    """Mark the runs whose stored trace still holds, and those whose trace to fetch."""
    for c in candidates:
        cached = c.cached
        if cached is None or not cached.detailed or job.refresh:  # refresh: stored traces may be stale
            c.has_trace = False
        elif c.summary is None:  # known only from the cache
            c.has_trace = cached.finished
        else:
            # Stored details still hold if the run had finished (finished runs do not
            # change) or if its summary has not changed since they were fetched.
            c.has_trace = ((cached.finished and cached.status == c.summary.get("status"))
                           or cached.fingerprint == fingerprint(c.summary))
        job.stats.cache_hits += (cached is not None and job.details is not False
                                  and (c.has_trace or c.summary is None))
    if job.details is False:
        return
    have = np.array([c.has_trace for c in candidates], dtype=bool)
    missing = int((~have).sum())
    total = trace_target(job, len(candidates), missing)
    if total >= len(candidates):
        chosen = ~have
    else:
        frame = pd.DataFrame({
            "id": [c.id for c in candidates],
            "agent_id": [c.agent_id for c in candidates],
            "disposition": _dispositions(job, candidates),
            "status": [_status(c) for c in candidates],
        })
        strata = int(strata_codes(frame).max()) + 1 if len(frame) else 0
        if total < strata:
            asked = "details=\"auto\" (about two minutes of the pace)" if job.details == "auto" \
                else f"details={job.details}"
            warnings.warn(f"{asked} is {total:,} traces, fewer than the {strata:,} strata (agent x "
                          f"disposition x status) of these runs: raised to one trace per stratum, "
                          f"{strata:,} traces", UserWarning, stacklevel=4)
        chosen = choose_traces(frame, have, total, seed=job.seed)
    for c, fetch in zip(candidates, chosen):
        c.fetch = bool(fetch)


def trace_target(job: FetchJob, runs: int, missing: int) -> int:
    """How many runs of the window should carry a trace after this fetch."""
    if job.details is True:
        return runs
    if job.details == "auto":
        budget = max(1, round(AUTO_TRACE_SECONDS * job.client.limiter.requests_per_minute / 60))
        return runs if missing <= budget else budget
    return int(job.details)


def _status(c: Candidate) -> str | None:
    """A run's status: from its summary, or from the cache for a run known only there."""
    if c.summary is not None:
        return c.summary.get("status")
    return c.cached.status if c.cached is not None else None


def _dispositions(job: FetchJob, candidates: list[Candidate]) -> list[Any]:
    """Each run's disposition: from its summary, or from the cache for runs known only there."""
    only_cached = [c.id for c in candidates if c.summary is None]
    stored: dict[str, Any] = {}
    if only_cached and job.store is not None:
        runs, _ = job.store.load(job.source, only_cached)
        stored = dict(zip(runs["id"].astype(object), runs["disposition"].astype(object)))
    return [c.summary.get("disposition") if c.summary is not None else stored.get(c.id) for c in candidates]


def fetch_details(job: FetchJob, candidates: list[Candidate]) -> set[str]:
    """Fetch the full records of the runs that need them, concurrently within the pace.
    Returns the ids that failed (they are in the errors table)."""
    todo = [c for c in candidates if c.fetch]
    failed: set[str] = set()
    if not todo:
        return failed
    bar = progress_bar(job.progress, total=len(todo), desc="traces", unit="run")
    buffer: list[dict[str, Any]] = []
    last_flush = time.monotonic()

    def flush() -> None:
        nonlocal last_flush
        if job.store and buffer:
            job.store.put(job.source, buffer, detailed=True, agent_names=job.agent_names)
        buffer.clear()
        last_flush = time.monotonic()

    pool = ThreadPoolExecutor(max_workers=min(DETAIL_WORKERS, len(todo)),
                              thread_name_prefix="conduit-trace")
    stopping = threading.Event()

    def get_run(agent_id: str, run_id: str) -> dict[str, Any] | None:
        # After an interrupt, workers already waiting for their turn send nothing.
        return None if stopping.is_set() else job.client.get_run(agent_id, run_id)

    pending: dict[Future, Candidate] = {}
    try:
        for c in todo:
            pending[pool.submit(get_run, c.agent_id, c.id)] = c
        while pending:
            done, _ = wait(pending, timeout=FLUSH_SECONDS, return_when=FIRST_COMPLETED)
            for future in done:
                c = pending.pop(future)
                job.stats.detail_requests += 1
                try:
                    record = future.result()
                except ConduitError as exc:
                    failed.add(c.id)
                    job.failed(c.agent_id, c.id, exc)
                else:
                    problem = record_problem(record)
                    if problem is None and record["id"] != c.id:
                        problem = f"asked for run {c.id}, the API answered with run {record['id']}"
                    if problem is not None:
                        failed.add(c.id)
                        job.turn_away(c.agent_id, {"id": c.id}, problem, "fetched by its id")
                    else:
                        job.records[c.id] = record
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
