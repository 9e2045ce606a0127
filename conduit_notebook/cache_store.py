"""The run cache's store (:class:`RunCache`): the index of runs, their segments, coverage of
listed windows, claims and threads, every write one transaction. The module docstring of
:mod:`conduit_notebook.cache` describes the layout; the file itself is :mod:`.cache_file`'s.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa

from .cache_claims import mark_owner, release_claims, take_claim, unmark_owner
from .cache_file import (
    APPLICATION_ID,
    SCHEMA,
    SCHEMA_VERSION,
    CacheInfo,
    check_tables,
    check_version,
    file_kind,
    looks_like_ours,
    not_ours,
    prepare_file,
    problem,
)
from .cache_segments import concat_tables, from_bytes, heal_total_tokens, latest, to_bytes
from .columns import gc_paused
from .errors import CacheError
from .frames import newest_first, runs_frame, tool_calls_frame
from .paths import CACHE_ENV, default_cache_path
from .records import dedupe
from .schema import DETAIL_FIELDS, FINISHED_STATUSES
from .storage import frame_to_table, table_to_frame

__all__ = ["COMPACT_AFTER", "LOCK_WAIT_S", "MIN_MS", "CachedRun", "CachedThread", "RunCache", "fingerprint", "guarded"]

#: Segments a source may have before they are merged into one.
COMPACT_AFTER = 24
#: Stands for "since the first run" in coverage intervals.
MIN_MS = -(2**62)
#: How long a write waits for another process's write to finish before saying the cache is locked.
LOCK_WAIT_S = 60.0


@dataclass(frozen=True)
class CachedRun:
    id: str
    agent_id: str
    created_ms: int | None
    status: str | None
    detailed: bool
    segment: int
    fingerprint: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES


@dataclass(frozen=True)
class CachedThread:
    """A conversation's messages as stored: when they were fetched, the newest message's time
    (epoch ms; None for an empty thread) and the API's records, oldest first."""

    fetched_ms: int
    last_ms: int | None
    messages: list[dict[str, Any]]


def fingerprint(record: Mapping[str, Any]) -> str:
    """A digest of a run's list-summary fields: unchanged means the run has not moved on."""
    summary = {k: v for k, v in record.items() if k not in DETAIL_FIELDS}
    text = json.dumps(summary, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


F = TypeVar("F", bound=Callable[..., Any])


def guarded(method: F) -> F:
    """SQLite or Arrow failing on the file (damage found late) -> a CacheError that says what to do."""
    @functools.wraps(method)
    def wrapper(self: RunCache, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.Error, pa.ArrowException) as exc:
            raise self._problem(exc) from None
    return wrapper  # type: ignore[return-value]


class RunCache:
    """The cache file; ``RunCache()`` opens the default one (see :func:`default_cache_path`)."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_cache_path()
        if self.path.is_dir():
            raise ValueError(f"cache must be a file path, not a directory: {self.path}")
        self._lock = threading.RLock()
        conn: sqlite3.Connection | None = None  # closed again when opening fails
        try:
            kind = file_kind(self.path)
            if kind in ("other", "foreign"):
                raise not_ours(self.path)
            if kind == "sqlite" and not looks_like_ours(self.path):
                raise not_ours(self.path)
            prepare_file(self.path, ours=path is None and not os.environ.get(CACHE_ENV))
            self._conn = conn = sqlite3.connect(self.path, timeout=LOCK_WAIT_S, isolation_level=None,
                                                check_same_thread=False)
            self._conn.execute(f"PRAGMA busy_timeout = {int(LOCK_WAIT_S * 1000)}")
            check_version(self._conn, self.path)
            tables = {row[0] for row in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not {"meta", "segments", "runs", "coverage", "threads", "claims"} <= tables or kind != "ours":
                # A new file, or one of an older version: its tables (and the mark that it is
                # ours) are written once. An existing cache needs no write lock to be opened,
                # so `cache info` answers while a sync is writing.
                # Pages freed by compaction go back to the file system (a no-op on older
                # files, which compact() converts once with a VACUUM).
                self._conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
                self._conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")  # in the header, before WAL
                self._conn.execute("PRAGMA journal_mode = WAL")
                with self._transaction():
                    for statement in filter(str.strip, SCHEMA.split(";")):
                        self._conn.execute(statement)
                    self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                                       (SCHEMA_VERSION,))
                    self._conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            check_tables(self._conn, self.path)
        except (sqlite3.Error, OSError) as exc:
            if conn is not None:
                conn.close()
            raise self._problem(exc) from None
        except CacheError:
            if conn is not None:
                conn.close()
            raise

    def _problem(self, exc: BaseException) -> CacheError:
        return problem(self.path, exc, LOCK_WAIT_S)

    def __repr__(self) -> str:
        return f"RunCache({str(self.path)!r})"

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> RunCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    class _Tx:
        def __init__(self, cache: RunCache) -> None:
            self.cache = cache

        def __enter__(self) -> sqlite3.Connection:
            self.cache._lock.acquire()
            self.cache._conn.execute("BEGIN IMMEDIATE")
            return self.cache._conn

        def __exit__(self, exc_type: Any, *rest: object) -> None:
            try:
                if exc_type is None:
                    self.cache._conn.execute("COMMIT")
                elif self.cache._conn.in_transaction:  # SQLite may have rolled back itself (disk full)
                    self.cache._conn.execute("ROLLBACK")
            finally:
                self.cache._lock.release()

    def _transaction(self) -> RunCache._Tx:
        return RunCache._Tx(self)

    # -- index ----------------------------------------------------------------------------

    @guarded
    def lookup(self, source: str, ids: Iterable[str]) -> dict[str, CachedRun]:
        """The cached state of these runs (those not cached are absent)."""
        found: dict[str, CachedRun] = {}
        for row in self._rows_of("SELECT id, agent_id, created_ms, status, detailed, segment, fingerprint "
                                 "FROM runs WHERE source = ? AND id IN ({})", source, ids):
            found[row[0]] = CachedRun(row[0], row[1], row[2], row[3], bool(row[4]), row[5], row[6])
        return found

    def _rows_of(self, query: str, source: str, keys: Iterable[str]) -> list[Any]:
        """``query`` (with ``source = ?`` and an ``IN ({})`` list) over ``keys``, 500 at a time
        (SQLite's limit on parameters)."""
        keys = list(keys)
        rows: list[Any] = []
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                rows += self._conn.execute(query.format(",".join("?" * len(chunk))), [source, *chunk]).fetchall()
        return rows

    @guarded
    def select(
        self,
        source: str,
        agent_id: str,
        *,
        since_ms: int | None = None,
        until_ms: int | None = None,
    ) -> list[CachedRun]:
        """The cached runs of an agent created in [since, until], newest first."""
        query = ("SELECT id, agent_id, created_ms, status, detailed, segment, fingerprint FROM runs "
                 "WHERE source = ? AND agent_id = ?")
        params: list[Any] = [source, agent_id]
        if since_ms is not None:
            query += " AND created_ms >= ?"
            params.append(since_ms)
        if until_ms is not None:
            query += " AND created_ms <= ?"
            params.append(until_ms)
        query += " ORDER BY created_ms DESC"
        with self._lock:
            rows = self._conn.execute(query, params).fetchall()
        return [CachedRun(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6]) for r in rows]

    @guarded
    def coverage(self, source: str, agent_id: str, status_keys: Sequence[str]) -> list[tuple[int, int]]:
        """Intervals [lo, hi] of created times (ms) in which every run was listed once."""
        marks = ",".join("?" * len(status_keys))
        with self._lock:
            rows = self._conn.execute(
                f"SELECT lo, hi FROM coverage WHERE source = ? AND agent_id = ? AND status_key IN ({marks})",
                [source, agent_id, *status_keys],
            ).fetchall()
        return sorted((int(lo), int(hi)) for lo, hi in rows)

    @guarded
    def add_coverage(self, source: str, agent_id: str, status_key: str, lo: int, hi: int) -> None:
        """Record that every run created in [lo, hi] was listed; merge with what is known."""
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT lo, hi FROM coverage WHERE source = ? AND agent_id = ? AND status_key = ?",
                (source, agent_id, status_key),
            ).fetchall()
            intervals = sorted([(int(a), int(b)) for a, b in rows] + [(lo, hi)])
            merged: list[list[int]] = []
            for a, b in intervals:
                if merged and a <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], b)
                else:
                    merged.append([a, b])
            conn.execute("DELETE FROM coverage WHERE source = ? AND agent_id = ? AND status_key = ?",
                         (source, agent_id, status_key))
            conn.executemany("INSERT INTO coverage VALUES (?, ?, ?, ?, ?)",
                             [(source, agent_id, status_key, a, b) for a, b in merged])

    # -- data -----------------------------------------------------------------------------

    @guarded
    def put(
        self,
        source: str,
        records: Sequence[Mapping[str, Any]],
        *,
        detailed: bool,
        agent_names: Mapping[str, str | None] | None = None,
    ) -> int:
        """Store runs (full records if ``detailed``, else list summaries) in one transaction.

        A summary never replaces stored details of the same run when the run has finished
        (finished runs do not change) or its summary is unchanged. Returns the runs written.
        """
        records = dedupe(records)  # a run listed twice is stored once: the later copy
        if not records:
            return 0
        prints = {r["id"]: fingerprint(r) for r in records}
        with self._transaction() as conn:
            # Checked inside the write lock: another notebook may have stored details meanwhile.
            if not detailed:
                known = self.lookup(source, prints)
                records = [r for r in records
                           if not ((c := known.get(r["id"])) is not None and c.detailed
                                   and (c.finished or c.fingerprint == prints[r["id"]]))]
                if not records:
                    return 0
            runs = runs_frame(records, agent_names=agent_names)
            calls = tool_calls_frame(records) if detailed else tool_calls_frame([])
            created = (runs["created_at"].astype("int64") // 1_000_000).where(runs["created_at"].notna())
            segment = conn.execute(
                "INSERT INTO segments (source, written_at, n_runs, n_calls, runs, calls) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (source, time.time(), len(runs), len(calls),
                 to_bytes(frame_to_table(runs, "runs")), to_bytes(frame_to_table(calls, "tool_calls"))),
            ).lastrowid
            conn.executemany(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (source, run_id, agent_id, None if pd.isna(ms) else int(ms),
                     None if pd.isna(status) else str(status), int(detailed), segment,
                     prints.get(run_id))
                    for run_id, agent_id, ms, status in zip(
                        runs["id"], runs["agent_id"].astype(object), created, runs["status"].astype(object), strict=False)
                ],
            )
        return len(runs)

    @guarded
    def load(self, source: str, ids: Iterable[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The stored runs and tool calls (of ``ids``, or all of the source), newest first."""
        with gc_paused():  # hundreds of thousands of new objects, none of them garbage
            return self._load(source, ids)

    def _load(self, source: str, ids: Iterable[str] | None) -> tuple[pd.DataFrame, pd.DataFrame]:
        # Whole segments, oldest first; a run written again is in a newer one, and its last copy
        # wins. No per-run lookup: the index is for planning fetches, not for reading.
        segments, run_tables, call_tables = [], [], []
        with self._lock:
            # One read transaction: the segments and the index count are one snapshot, so a
            # write by another process between them cannot make them disagree.
            own = not self._conn.in_transaction  # inside compaction's write: that is the snapshot
            if own:
                self._conn.execute("BEGIN")
            try:
                # One segment at a time: its compressed bytes are let go as soon as it is read.
                for segment, runs_blob, calls_blob in self._conn.execute(
                    "SELECT segment, runs, calls FROM segments WHERE source = ? ORDER BY segment", (source,)
                ):
                    segments.append(segment)
                    run_tables.append(from_bytes(runs_blob))
                    call_tables.append(from_bytes(calls_blob))
                    del runs_blob, calls_blob
                indexed = self._conn.execute("SELECT COUNT(*) FROM runs WHERE source = ?", (source,)).fetchone()[0]
            finally:
                if own:
                    self._conn.execute("COMMIT")
        if not segments:
            return runs_frame([]), tool_calls_frame([])
        runs_table, calls_table = latest(
            concat_tables(run_tables), concat_tables(call_tables),
            np.repeat(segments, [t.num_rows for t in run_tables]),
            np.repeat(segments, [t.num_rows for t in call_tables]),
            None if ids is None else pa.array(list(ids), type=pa.string()),
            # Each indexed run is in one segment at least: more rows than runs means copies.
            unique=sum(t.num_rows for t in run_tables) <= indexed,
        )
        runs = heal_total_tokens(table_to_frame(runs_table, "runs"))
        calls = table_to_frame(calls_table, "tool_calls")
        return newest_first(runs, calls)

    @guarded
    def compact(self, source: str, *, force: bool = False) -> bool:
        """Merge a source's segments into one (dropping superseded copies) once there are many."""
        with self._lock:
            count = self._conn.execute("SELECT COUNT(*) FROM segments WHERE source = ?",
                                       (source,)).fetchone()[0]
            if count <= (1 if force else COMPACT_AFTER):
                return False
            with self._transaction() as conn:
                runs, calls = self.load(source)
                segment = conn.execute(
                    "INSERT INTO segments (source, written_at, n_runs, n_calls, runs, calls) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (source, time.time(), len(runs), len(calls),
                     to_bytes(frame_to_table(runs, "runs")),
                     to_bytes(frame_to_table(calls, "tool_calls"))),
                ).lastrowid
                conn.execute("UPDATE runs SET segment = ? WHERE source = ?", (segment, source))
                conn.execute("DELETE FROM segments WHERE source = ? AND segment != ?", (source, segment))
            self._release_free_pages()
            return True

    def _release_free_pages(self) -> None:
        """Give the pages of dropped segments back (a compacted cache was a third free pages)."""
        if self._conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2:
            self._conn.executescript("PRAGMA incremental_vacuum;")  # execute() frees one page only
        else:
            self._conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            self._conn.execute("VACUUM")

    # -- management -----------------------------------------------------------------------

    # -- who is fetching which trace --------------------------------------------------------

    @guarded
    def claim(self, source: str, run_id: str, owner: str, seconds: float) -> bool:
        """Take the fetch of ``run_id``'s trace for ``owner`` for ``seconds``; False when another
        owner (another process following the same workspace) holds a live claim on it."""
        now = time.time()
        mark_owner(owner)
        with self._transaction() as conn:
            return take_claim(conn, source, run_id, owner, now, seconds)

    @guarded
    def release(self, owner: str) -> None:
        """Drop ``owner``'s claims (its fetch is over), and every claim that has run out. The
        owner is over even when the write fails (a full disk): its claims left in the file are
        then no longer honoured by this process's next fetch."""
        unmark_owner(owner)
        with self._transaction() as conn:
            release_claims(conn, owner)

    # -- conversations' messages ------------------------------------------------------------

    @guarded
    def threads(self, source: str, conversation_ids: Iterable[str]) -> dict[str, CachedThread]:
        """The stored threads of these conversations (those never fetched are absent)."""
        rows = self._rows_of("SELECT conversation_id, fetched_ms, last_ms, messages FROM threads "
                             "WHERE source = ? AND conversation_id IN ({})", source, conversation_ids)
        return {cid: CachedThread(fetched_ms, last_ms, json.loads(blob)) for cid, fetched_ms, last_ms, blob in rows}

    @guarded
    def put_threads(self, source: str, threads: Mapping[str, CachedThread]) -> None:
        """Store whole threads (a thread written again replaces the old one), in one transaction."""
        if not threads:
            return
        with self._transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO threads VALUES (?, ?, ?, ?, ?, ?)",
                [(source, cid, t.fetched_ms, t.last_ms, len(t.messages),
                  json.dumps(t.messages, ensure_ascii=False).encode("utf-8")) for cid, t in threads.items()])

    @guarded
    def info(self) -> CacheInfo:
        with self._lock:
            rows = self._conn.execute(
                "SELECT r.source, COUNT(*), SUM(r.detailed), "
                "SUM(CASE WHEN r.status IN ('completed', 'failed') THEN 1 ELSE 0 END), "
                "MIN(r.created_ms), MAX(r.created_ms), "
                "(SELECT COUNT(*) FROM segments s WHERE s.source = r.source) "
                "FROM runs r GROUP BY r.source ORDER BY r.source"
            ).fetchall()
        sources = pd.DataFrame(
            rows, columns=["source", "runs", "with_details", "finished", "oldest", "newest", "segments"]
        )
        for column in ("oldest", "newest"):
            sources[column] = pd.to_datetime(sources[column], unit="ms", utc=True)
        size = sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())
        return CacheInfo(self.path, size, sources)

    @guarded
    def clear(self, source: str | None = None) -> int:
        """Forget every run (of ``source``, or all); returns how many were forgotten."""
        with self._transaction() as conn:
            where, params = ("WHERE source = ?", (source,)) if source else ("", ())
            count = conn.execute(f"SELECT COUNT(*) FROM runs {where}", params).fetchone()[0]
            for table in ("runs", "segments", "coverage", "threads", "claims"):
                conn.execute(f"DELETE FROM {table} {where}", params)
        with self._lock:
            self._conn.execute("VACUUM")
        return int(count)
