"""Which runs get their trace, and fetching them: every missing trace when they fit in the
budget, else a stratified sample (:mod:`conduit_notebook.sampling`); one request a run,
:data:`DETAIL_WORKERS` at once within the client's pace, written to the cache as they come."""

from __future__ import annotations

import os
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
from .sampling import drawn_traces, strata_codes

__all__ = ["AUTO_TRACE_SECONDS", "fetch_details", "plan_traces", "trace_target"]

#: Trace requests in flight at once; the client's pacing decides how fast they go.
DETAIL_WORKERS = 8
#: Fetched traces are written to the cache at least this often (seconds) ...
FLUSH_SECONDS = 2.0
#: ... or every this many runs, so that an interrupted fetch keeps its work.
FLUSH_RUNS = 200
#: How long a trace claimed by another process is left to it (seconds).
CLAIM_SECONDS = 120.0
#: What a worker returns for a run another process has claimed.
_CLAIMED: dict[str, Any] = {}
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
        # Traces at hand outside the draw (hand-picked, another seed) stay out of the estimates.
        drawn = drawn_traces(frame, have, total, seed=job.seed)
        chosen = drawn & ~have
        for c, in_draw in zip(candidates, drawn, strict=False):
            c.drawn = bool(in_draw)
    for c, fetch in zip(candidates, chosen, strict=False):
        c.fetch = bool(fetch)


def trace_target(job: FetchJob, runs: int, missing: int) -> int:
    """How many runs of the window should carry a trace after this fetch."""
    if job.details is True:
        return runs
    if job.details == "auto":
        # The configured pace, not the one a 429 slowed: the same call again takes the same sample.
        budget = max(1, round(AUTO_TRACE_SECONDS * job.client.limiter.limit / 60))
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
        stored = dict(zip(runs["id"].astype(object), runs["disposition"].astype(object), strict=False))
    return [c.summary.get("disposition") if c.summary is not None else stored.get(c.id) for c in candidates]


def fetch_details(job: FetchJob, candidates: list[Candidate]) -> set[str]:
    """Fetch the full records of the runs that need them, concurrently within the pace.
    Returns the ids that failed (they are in the errors table).

    With a cache, each trace is claimed in it before it is asked for: a run another process is
    fetching right now (two ``sync --follow`` of one workspace, a notebook beside a sync) is left
    to it, and read from the cache once it arrives (waiting at most :data:`CLAIM_SECONDS`; what
    has not arrived by then is fetched here)."""
    todo = [c for c in candidates if c.fetch]
    failed: set[str] = set()
    if not todo:
        return failed
    owner = f"{os.getpid()}-{id(job)}"
    try:
        deferred = _fetch(job, todo, failed, owner if job.store is not None else None)
        deferred = _wait_for_others(job, deferred)
        if deferred:
            _fetch(job, deferred, failed, None)
    finally:
        if job.store is not None:
            job.store.release(owner)
    return failed


def _wait_for_others(job: FetchJob, deferred: list[Candidate]) -> list[Candidate]:
    """The deferred runs whose trace another process has not stored within CLAIM_SECONDS."""
    deadline = time.monotonic() + CLAIM_SECONDS
    while deferred and job.store is not None:
        known = job.store.lookup(job.source, [c.id for c in deferred])
        for c in deferred:
            cached = known.get(c.id)
            if cached is not None and cached.detailed:
                c.has_trace = True
        deferred = [c for c in deferred if not c.has_trace]
        if not deferred or time.monotonic() >= deadline:
            break
        time.sleep(0.25)
    return deferred


def _fetch(job: FetchJob, todo: list[Candidate], failed: set[str], owner: str | None) -> list[Candidate]:
    """Fetch ``todo``'s records; with an ``owner``, only those it can claim. Returns the runs
    left to another process's claim."""
    deferred: list[Candidate] = []
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
        if stopping.is_set():
            return None
        if owner is not None and job.store is not None and not job.store.claim(job.source, run_id, owner,
                                                                                 CLAIM_SECONDS):
            return _CLAIMED
        return job.client.get_run(agent_id, run_id)

    pending: dict[Future, Candidate] = {}
    try:
        for c in todo:
            pending[pool.submit(get_run, c.agent_id, c.id)] = c
        while pending:
            done, _ = wait(pending, timeout=FLUSH_SECONDS, return_when=FIRST_COMPLETED)
            for future in done:
                _take_answer(job, pending.pop(future), future, failed, buffer, deferred)
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
    return deferred


def _take_answer(job: FetchJob, c: Candidate, future: Future, failed: set[str], buffer: list[dict[str, Any]],
                 deferred: list[Candidate]) -> None:
    """One run's answer: its record kept (and buffered for the cache), its failure noted in
    ``failed`` and the job's errors, or the run left to another process's claim (``deferred``)."""
    try:
        record = future.result()
        if record is _CLAIMED:  # another process is fetching it
            deferred.append(c)
            return
        job.stats.detail_requests += 1
    except ConduitError as exc:
        job.stats.detail_requests += 1
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
