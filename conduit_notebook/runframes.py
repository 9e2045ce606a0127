"""The result of :func:`conduit_notebook.fetch_runs`: :class:`RunFrames` (runs, tool calls,
agents, errors and what the fetch cost, :class:`FetchStats`), and :func:`read_parquet`, which
reads an export back into one.

It lives apart from the code that builds it, so that the fetch and the Parquet export both
depend on it and not on each other.

>>> frames = fetch_runs(since="7d")
>>> frames.to_parquet("conduit-runs/")
>>> again = read_parquet("conduit-runs/")
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from .export import read_tables, to_parquet
from .frames import agents_frame, errors_frame
from .messages import messages_frame, with_message_dtypes
from .sampling import STRATA, trace_failures

__all__ = ["MESSAGES_FILE", "FetchStats", "RunFrames", "TraceFetcher", "read_parquet"]

#: Where :meth:`RunFrames.to_parquet` keeps the conversations' messages (beside runs/ and
#: tool_calls/), when any were fetched.
MESSAGES_FILE = "messages.parquet"


class TraceFetcher(Protocol):
    """What :meth:`RunFrames.fetch_traces` asks for more traces: it fetches the traces of
    ``run_ids`` (None: every run without one) and puts them into ``frames``."""

    def fetch_traces(self, frames: RunFrames, run_ids: Sequence[str] | pd.Series | None, *,
                     progress: bool | None) -> None: ...

    def fetch_messages(self, frames: RunFrames, conversation_ids: list[str], *, refresh: bool,
                       progress: bool | None) -> None:
        """Fetch these conversations' threads into ``frames.messages`` (and failures into
        ``frames.errors``)."""


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
    either in ``runs`` or in ``errors``, never silently dropped; a run whose trace failed is in
    both (``runs`` with its list page's fields and ``trace_failed`` True, counted by
    ``trace_failures``; estimates treat it as non-response). ``runs["trace_weight"]`` is a
    traced run's weight (its stratum's runs / its stratum's traced runs; 1 when every trace is
    there), missing for a run without a trace, 0 for a trace fetched by hand
    (:meth:`fetch_traces` with ids, the inspector: not drawn at random, so left out of the
    estimates); ``traced`` counts the runs with one, and
    ``trace_strata`` describes the sample (per agent, disposition and status: runs, traced,
    weight). :meth:`fetch_traces` fetches more traces and adds them.
    """

    runs: pd.DataFrame
    tool_calls: pd.DataFrame
    agents: pd.DataFrame
    errors: pd.DataFrame
    since: pd.Timestamp | None = None
    until: pd.Timestamp | None = None
    details: bool | int | str = True
    source: str = ""
    stats: FetchStats = field(default_factory=FetchStats)
    #: Where :meth:`fetch_traces` gets more traces from (set by :func:`fetch_runs`; None for
    #: frames read from Parquet).
    trace_source: TraceFetcher | None = field(default=None, repr=False, compare=False)
    #: The guest conversations' messages fetched so far (:meth:`fetch_messages`), one row per
    #: message (see :func:`conduit_notebook.messages_frame`); empty until asked for.
    messages: pd.DataFrame = field(default_factory=lambda: messages_frame([]), repr=False, compare=False)

    @property
    def traced(self) -> int:
        """How many runs carry their trace (response, reflection, tool calls)."""
        if "trace_weight" not in self.runs:
            return len(self.runs) if self.details is True else 0
        return int(self.runs["trace_weight"].notna().sum())

    @property
    def trace_failures(self) -> int:
        """How many runs lack their trace because fetching it failed for good (``trace_failed``;
        the failures are in ``errors``)."""
        return trace_failures(self.runs)[0]

    @property
    def complete(self) -> bool:
        """Whether every run carries its trace (trace-based numbers are counts, not estimates)."""
        return self.traced == len(self.runs)

    @property
    def trace_strata(self) -> pd.DataFrame:
        """The sample design: per agent, disposition and status, the runs, the traced runs and
        the weight of each traced run."""
        columns = [c for c in STRATA if c in self.runs]
        traced = self.runs["trace_weight"].notna() if "trace_weight" in self.runs else False
        table = (self.runs[columns].assign(runs=1, traced=traced)
                 .groupby(columns, observed=True, dropna=False)[["runs", "traced"]].sum())
        table["traced"] = table["traced"].astype("int64")
        table["weight"] = (table["runs"] / table["traced"].where(table["traced"] > 0)).astype(float)
        return table.reset_index()

    def _span(self) -> str:
        created = self.runs["created_at"].dropna()
        if created.empty:
            return "no runs"
        return f"{created.min():%Y-%m-%d %H:%M} to {created.max():%Y-%m-%d %H:%M} UTC"

    def _traces_line(self) -> str:
        if self.details is False:
            return "not fetched (details=False)"
        if self.complete:
            return f"every run ({len(self.runs):,})"
        failed = self.trace_failures
        if failed and self.details is True:
            return (f"{self.traced:,} of {len(self.runs):,} runs ({failed:,} failed, in errors: tool numbers "
                    "are estimates; .fetch_traces() tries again)")
        return (f"{self.traced:,} of {len(self.runs):,} runs (a stratified sample"
                + (f", {failed:,} failed" if failed else "")
                + ": tool numbers are estimates; .fetch_traces() gets the rest)")

    def _lines(self) -> list[tuple[str, str]]:
        s = self.stats
        agents = self.runs["agent_id"].nunique()
        return [
            ("runs", f"{len(self.runs):,} from {agents} agent{'s' if agents != 1 else ''}"),
            ("time span", self._span()),
            ("traces", self._traces_line()),
            ("tool calls", f"{len(self.tool_calls):,}" if self.details is not False else "not fetched (details=False)"),
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
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>"
            f"{html.escape(v)}</td></tr>" for k, v in self._lines()
        )
        return (f"<div><b>RunFrames</b> <code>.runs</code>, <code>.tool_calls</code>, "
                f"<code>.agents</code>, <code>.errors</code><table>{rows}</table></div>")

    def to_parquet(self, directory: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Write runs and tool calls as Parquet datasets partitioned by date and agent, and the
        conversations' messages fetched so far as ``messages.parquet``.

        See :func:`conduit_notebook.read_parquet`; DuckDB, Spark and Dask read the same files.
        """
        root = to_parquet(self, directory, overwrite=overwrite)
        path = root / MESSAGES_FILE
        if path.exists():
            path.unlink()  # overwrite=True: the old export's messages go with it
        if len(self.messages):
            messages = self.messages.copy()
            for name in messages.columns:  # fields the API added that hold objects: as JSON text
                if messages[name].dtype == object:
                    messages[name] = messages[name].map(lambda v: v if v is None or isinstance(v, str)
                                                        else json.dumps(v, default=str))
            messages.to_parquet(path, index=False)

    def to_lake(self, path: str | os.PathLike[str], *, workspace: str | None = None) -> Any:
        """Upsert these runs, tool calls and messages into the Parquet lake at ``path`` (each run
        once, its latest record; atomic): :func:`conduit_notebook.lake.write_lake`. Returns what
        was written (a :class:`conduit_notebook.lake.LakeWrite`)."""
        from .lake.write import write_lake  # the lake reads RunFrames back: imported when used

        return write_lake(self, path, workspace=workspace)

    def fetch_traces(self, run_ids: Sequence[str] | pd.Series | None = None, *,
                     progress: bool | None = None) -> RunFrames:
        """Fetch the traces of these runs (default: every run without one) and add them to
        ``runs`` and ``tool_calls``; weights are recomputed. One request per run lacking its
        trace, through the cache (a cached trace costs nothing). Returns these frames.

        >>> frames.fetch_traces(review_sample(frames.runs, n=60)["id"])
        """
        if self.trace_source is None:
            raise ValueError("these frames were not made by fetch_runs, so there is no workspace to fetch traces from")
        self.trace_source.fetch_traces(self, run_ids, progress=progress)
        return self

    def fetch_messages(self, run_ids: Sequence[str] | pd.Series | None = None, *, refresh: bool = False,
                       progress: bool | None = None) -> pd.DataFrame:
        """Fetch the guest conversations of these runs (default: every run's, after saying what
        that costs) into ``messages``, and return those conversations' messages.

        One request per thread of up to 100 messages, within the client's pace (the same budget
        as traces), through the cache: a stored thread is asked for again only when a run of its
        conversation started or finished after it was fetched, or with ``refresh=True``. A thread
        that could not be fetched is a row of ``errors``.

        >>> frames.fetch_messages(review["id"])
        """
        ids = self._run_ids(run_ids)
        runs = self.runs[self.runs["id"].astype(object).isin(set(ids))] if run_ids is not None else self.runs
        conversations = [str(c) for c in dict.fromkeys(runs["conversation_id"].astype(object).dropna())]
        if self.trace_source is None:
            raise ValueError("these frames were not made by fetch_runs, so there is no workspace to fetch "
                             "messages from; use fetch_messages(conversation_ids, client=...)")
        if conversations:
            self.trace_source.fetch_messages(self, conversations, refresh=refresh,
                                             progress=progress if run_ids is not None else progress)
        keep = self.messages["conversation_id"].astype(object).isin(set(conversations))
        return self.messages[keep.to_numpy()].reset_index(drop=True)

    def _run_ids(self, run_ids: Sequence[str] | pd.Series | None) -> list[str]:
        """``run_ids`` as a list of ids of these runs (None: all), or a clear error."""
        if run_ids is None:
            return list(self.runs["id"].astype(object))
        wanted = [run_ids] if isinstance(run_ids, str) else list(pd.Series(run_ids).astype(object))
        known = set(self.runs["id"].astype(object))
        unknown = [i for i in wanted if i not in known]
        if unknown:
            raise ValueError(f"run_ids must be ids of runs in these frames; not found: "
                             f"{', '.join(map(repr, unknown[:5]))}{' ...' if len(unknown) > 5 else ''}")
        return wanted

    def fetch_trace(self, run_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The run (one row) and its tool calls, its trace fetched first if it lacks one: what
        :class:`RunInspector` calls when a run without a trace is opened."""
        if not isinstance(run_id, str) or not run_id:
            raise ValueError(f"run_id must be a run's id (a non-empty string); got {run_id!r}")
        self.fetch_traces([run_id], progress=False)
        row = self.runs[self.runs["id"] == run_id]
        calls = self.tool_calls[self.tool_calls["agent_run_id"].astype(object) == run_id]
        return row, calls


def read_parquet(directory: str | os.PathLike[str]) -> RunFrames:
    """Read an export written by :meth:`RunFrames.to_parquet` back into a :class:`RunFrames`
    (runs and tool calls with the dtypes they had; no agents or errors)."""
    runs, calls = read_tables(directory)
    path = Path(directory).expanduser() / MESSAGES_FILE
    messages = with_message_dtypes(pd.read_parquet(path)) if path.exists() else messages_frame([])
    return RunFrames(runs=runs, tool_calls=calls, agents=agents_frame([]), errors=errors_frame([]),
                     details=True, source=str(directory), messages=messages)
