"""The local run cache: one SQLite file, so that a run's trace is fetched once, ever.

Layout: an index table with one row per run (source, id, agent, created time, status, whether
its details are stored, and where), and segments: the runs and tool calls written together,
as compressed Arrow tables (:mod:`conduit_notebook.storage`), so that reopening 100,000 cached
runs is a few column reads, not 100,000 JSON parses. A run written again (it was running, now it
has finished) lives in the newer segment; older copies are dropped when segments are compacted.

The file is created with 0600 permissions and never holds the API token. SQLite's write-ahead
log with a busy timeout lets two notebooks share it; every write is one transaction, so an
interrupted fetch keeps what it had written.

>>> from conduit_notebook import cache_info, clear_cache
>>> cache_info()            # where it is, how big, what it holds
>>> clear_cache()           # start afresh
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
import pyarrow.compute as pc

from .errors import CacheError
from .frames import gc_paused, newest_first, runs_frame, tool_calls_frame
from .paths import CACHE_ENV, default_cache_path
from .records import dedupe
from .schema import DETAIL_FIELDS, FINISHED_STATUSES
from .storage import frame_to_table, table_to_frame

__all__ = ["APPLICATION_ID", "CacheInfo", "CachedThread", "RunCache", "cache_info", "clear_cache", "default_cache_path",
           "file_kind", "removable"]

#: Segments a source may have before they are merged into one.
COMPACT_AFTER = 24
#: Stands for "since the first run" in coverage intervals.
MIN_MS = -(2**62)
_SCHEMA_VERSION = "1"
#: How long a write waits for another process's write to finish before saying the cache is locked.
LOCK_WAIT_S = 60.0
#: SQLite's application_id of a conduit-notebook cache ("CNNB"): how a file is known to be ours.
APPLICATION_ID = 0x434E4E42
_SQLITE_HEADER = b"SQLite format 3\x00"
_OUR_TABLES = {"meta", "segments", "runs", "coverage"}
# Columns the code reads; a file whose tables lack one is not a cache this version can use.
_REQUIRED_COLUMNS = {
    "segments": {"segment", "source", "n_runs", "n_calls", "runs", "calls"},
    "runs": {"source", "id", "agent_id", "created_ms", "status", "detailed", "segment", "fingerprint"},
    "coverage": {"source", "agent_id", "status_key", "lo", "hi"},
}
_FIX = ("Run `conduit-notebook cache clear` (or clear_cache()) to start a fresh cache, or pass "
        "cache=False (or another file) to fetch_runs.")
_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="zstd")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS segments (
    segment INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    written_at REAL NOT NULL,
    n_runs INTEGER NOT NULL,
    n_calls INTEGER NOT NULL,
    runs BLOB NOT NULL,
    calls BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    source TEXT NOT NULL,
    id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    created_ms INTEGER,
    status TEXT,
    detailed INTEGER NOT NULL,
    segment INTEGER NOT NULL,
    fingerprint TEXT,
    PRIMARY KEY (source, id)
);
CREATE INDEX IF NOT EXISTS runs_by_agent ON runs (source, agent_id, created_ms);
CREATE INDEX IF NOT EXISTS runs_by_segment ON runs (segment);
CREATE TABLE IF NOT EXISTS threads (
    source TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    fetched_ms INTEGER NOT NULL,
    last_ms INTEGER,
    n_messages INTEGER NOT NULL,
    messages BLOB NOT NULL,
    PRIMARY KEY (source, conversation_id)
);
CREATE TABLE IF NOT EXISTS claims (
    source TEXT NOT NULL,
    id TEXT NOT NULL,
    owner TEXT NOT NULL,
    until REAL NOT NULL,
    PRIMARY KEY (source, id)
);
CREATE TABLE IF NOT EXISTS coverage (
    source TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    status_key TEXT NOT NULL,
    lo INTEGER NOT NULL,
    hi INTEGER NOT NULL
);
"""


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


def _to_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=_IPC_OPTIONS) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _read_pool() -> pa.MemoryPool:
    """The pool for decompressed segments: jemalloc gives memory back sooner than mimalloc (the
    default), which kept ~50 MB more at the peak of reopening 100,000 runs."""
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # pragma: no cover - a pyarrow built without jemalloc
        return pa.default_memory_pool()


def _from_bytes(blob: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(blob), memory_pool=_read_pool()).read_all()


def _concat(tables: list[pa.Table]) -> pa.Table:
    """Concatenate segment tables whose columns may differ (fields the API added later)."""
    if len(tables) == 1:
        return tables[0]
    metas = [json.loads(t.schema.metadata[b"conduit_notebook"]) for t in tables]
    merged = dict(metas[0])
    merged["dtypes"] = {k: v for m in metas for k, v in m["dtypes"].items()}
    merged["json"] = sorted({c for m in metas for c in m["json"]})
    table = pa.concat_tables(tables, promote_options="permissive").unify_dictionaries()
    return table.replace_schema_metadata({b"conduit_notebook": json.dumps(merged).encode()})


F = TypeVar("F", bound=Callable[..., Any])


def _guarded(method: F) -> F:
    """SQLite or Arrow failing on the file (damage found late) -> a CacheError that says what to do."""
    @functools.wraps(method)
    def wrapper(self: RunCache, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (sqlite3.Error, pa.ArrowException) as exc:
            raise self._problem(exc) from None
    return wrapper  # type: ignore[return-value]


def file_kind(path: Path) -> str:
    """What ``path`` holds, from its first 100 bytes (SQLite's header): ``missing``, ``empty``,
    ``ours`` (a SQLite file marked with :data:`APPLICATION_ID`), ``sqlite`` (unmarked: an older
    cache or another application's), ``foreign`` (another application's mark) or ``other``."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(100)
    except FileNotFoundError:
        return "missing"
    except IsADirectoryError:
        return "other"
    if not header:
        return "empty"
    if len(header) < 100 or not header.startswith(_SQLITE_HEADER):
        return "other"
    application_id = int.from_bytes(header[68:72], "big")
    return "ours" if application_id == APPLICATION_ID else ("sqlite" if application_id == 0 else "foreign")


def _looks_like_ours(path: Path) -> bool:
    """An unmarked SQLite file is taken as a cache of an older version only when it has the
    cache's tables and its meta row (or no table at all); opened read-only, nothing is written."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables - {"sqlite_sequence"}:
                return True
            if not _OUR_TABLES <= tables:
                return False
            return conn.execute("SELECT 1 FROM meta WHERE key = 'schema_version'").fetchone() is not None
        finally:
            conn.close()
    except sqlite3.Error:
        return False


def removable(path: Path) -> bool:
    """Whether ``cache clear`` may delete ``path``: a file marked as a conduit-notebook cache, or
    one in the toolkit's own cache directory (nothing else writes there). Never another file."""
    kind = file_kind(path)
    if kind in ("missing", "empty", "ours"):
        return True
    try:
        return path.resolve().parent == default_cache_path().resolve().parent and kind != "foreign"
    except OSError:
        return False


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
                raise self._not_ours()
            if kind == "sqlite" and not _looks_like_ours(self.path):
                raise self._not_ours()
            self._prepare_file(ours=path is None and not os.environ.get(CACHE_ENV))
            self._conn = conn = sqlite3.connect(self.path, timeout=LOCK_WAIT_S, isolation_level=None,
                                                check_same_thread=False)
            self._conn.execute(f"PRAGMA busy_timeout = {int(LOCK_WAIT_S * 1000)}")
            self._check_version()
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
                    for statement in filter(str.strip, _SCHEMA.split(";")):
                        self._conn.execute(statement)
                    self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                                       (_SCHEMA_VERSION,))
                    self._conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._check_tables()
        except (sqlite3.Error, OSError) as exc:
            if conn is not None:
                conn.close()
            raise self._problem(exc) from None
        except CacheError:
            if conn is not None:
                conn.close()
            raise

    def _prepare_file(self, *, ours: bool) -> None:
        """Create the file 0600 (its directory 0700); tighten an existing one that is looser."""
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if ours and directory.stat().st_mode & 0o077:
            os.chmod(directory, 0o700)  # the default directory holds nothing but this cache
        if not self.path.exists():
            # Created 0600 before SQLite opens it; SQLite gives its -wal and -shm files the
            # same permissions.
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        for file in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
            if file.exists() and file.stat().st_mode & 0o077:
                os.chmod(file, 0o600)

    def _check_version(self) -> None:
        has_meta = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone()
        if not has_meta:
            return
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = row[0] if row else _SCHEMA_VERSION
        if not str(version).isdigit() or int(version) > int(_SCHEMA_VERSION):
            raise CacheError(
                f"The run cache {self.path} was written by a newer conduit-notebook (schema "
                f"{version}; this version reads schema {_SCHEMA_VERSION}). Upgrade conduit-notebook, "
                f"or use another file: pass cache='other.sqlite' or set {CACHE_ENV}.",
                path=self.path, reason="newer",
            )

    def _check_tables(self) -> None:
        for table, wanted in _REQUIRED_COLUMNS.items():
            have = {row[1] for row in self._conn.execute(f"PRAGMA table_info({table})")}
            if not wanted <= have:
                raise CacheError(
                    f"The run cache {self.path} has a {table!r} table without the columns "
                    f"{', '.join(sorted(wanted - have))}: it is not a cache this version can use. {_FIX}",
                    path=self.path,
                )

    def _not_ours(self) -> CacheError:
        return CacheError(
            f"{self.path} is not a conduit-notebook cache (another application's file, or not a "
            "cache at all): it was left as it is, and `cache clear` will not delete it. Point "
            f"{CACHE_ENV} (or cache=) at a file of its own, or leave it unset for the default.",
            path=self.path, reason="foreign")

    def _problem(self, exc: BaseException) -> CacheError:
        text = str(exc)
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
            return CacheError(
                f"The run cache {self.path} is locked by another process (a sync or another notebook "
                f"writing to it) and stayed locked for {LOCK_WAIT_S:g} s. Nothing was changed: try again when it "
                "has finished, or pass cache=False (or another file).", path=self.path, reason="locked")
        if getattr(exc, "errno", None) == 28 or "database or disk is full" in text:
            return CacheError(
                f"The disk holding the run cache {self.path} is full: what was stored is kept, the "
                "last write was not. Free some space, or pass cache=False (or a file on another "
                "disk).", path=self.path, reason="disk_full")
        # SQLite says "unable to open database file" when WAL cannot make its side files: ask the OS.
        read_only = self.path.exists() and not (os.access(self.path, os.W_OK)
                                                and os.access(self.path.parent, os.W_OK))
        if isinstance(exc, PermissionError) or read_only or "readonly" in text or "read-only" in text:
            what = ("cannot be written (read-only file or directory?). Check its permissions, or "
                    "pass cache=False (or another file) to fetch_runs.")
            return CacheError(f"The run cache {self.path} {what}", path=self.path, reason="unwritable")
        what = f"cannot be read: it is damaged ({type(exc).__name__}: {text}). {_FIX}"
        return CacheError(f"The run cache {self.path} {what}", path=self.path, reason="damaged")

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

    @_guarded
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

    @_guarded
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

    @_guarded
    def coverage(self, source: str, agent_id: str, status_keys: Sequence[str]) -> list[tuple[int, int]]:
        """Intervals [lo, hi] of created times (ms) in which every run was listed once."""
        marks = ",".join("?" * len(status_keys))
        with self._lock:
            rows = self._conn.execute(
                f"SELECT lo, hi FROM coverage WHERE source = ? AND agent_id = ? AND status_key IN ({marks})",
                [source, agent_id, *status_keys],
            ).fetchall()
        return sorted((int(lo), int(hi)) for lo, hi in rows)

    @_guarded
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

    @_guarded
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
                 _to_bytes(frame_to_table(runs, "runs")), _to_bytes(frame_to_table(calls, "tool_calls"))),
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

    @_guarded
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
                    run_tables.append(_from_bytes(runs_blob))
                    call_tables.append(_from_bytes(calls_blob))
                    del runs_blob, calls_blob
                indexed = self._conn.execute("SELECT COUNT(*) FROM runs WHERE source = ?", (source,)).fetchone()[0]
            finally:
                if own:
                    self._conn.execute("COMMIT")
        if not segments:
            return runs_frame([]), tool_calls_frame([])
        runs_table, calls_table = _latest(
            _concat(run_tables), _concat(call_tables),
            np.repeat(segments, [t.num_rows for t in run_tables]),
            np.repeat(segments, [t.num_rows for t in call_tables]),
            None if ids is None else pa.array(list(ids), type=pa.string()),
            # Each indexed run is in one segment at least: more rows than runs means copies.
            unique=sum(t.num_rows for t in run_tables) <= indexed,
        )
        runs = _heal_total_tokens(table_to_frame(runs_table, "runs"))
        calls = table_to_frame(calls_table, "tool_calls")
        return newest_first(runs, calls)

    @_guarded
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
                     _to_bytes(frame_to_table(runs, "runs")),
                     _to_bytes(frame_to_table(calls, "tool_calls"))),
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

    @_guarded
    def claim(self, source: str, run_id: str, owner: str, seconds: float) -> bool:
        """Take the fetch of ``run_id``'s trace for ``owner`` for ``seconds``; False when another
        owner (another process following the same workspace) holds a live claim on it."""
        now = time.time()
        _OWNERS_HERE.add(owner)
        with self._transaction() as conn:
            row = conn.execute("SELECT owner, until FROM claims WHERE source = ? AND id = ?",
                               (source, run_id)).fetchone()
            if row is not None and row[0] != owner and row[1] > now and _alive(row[0]):
                return False
            conn.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?)", (source, run_id, owner, now + seconds))
        return True

    @_guarded
    def release(self, owner: str) -> None:
        """Drop ``owner``'s claims (its fetch is over), and every claim that has run out. The
        owner is over even when the write fails (a full disk): its claims left in the file are
        then no longer honoured by this process's next fetch."""
        _OWNERS_HERE.discard(owner)
        with self._transaction() as conn:
            conn.execute("DELETE FROM claims WHERE owner = ? OR until < ?", (owner, time.time()))

    # -- conversations' messages ------------------------------------------------------------

    @_guarded
    def threads(self, source: str, conversation_ids: Iterable[str]) -> dict[str, CachedThread]:
        """The stored threads of these conversations (those never fetched are absent)."""
        rows = self._rows_of("SELECT conversation_id, fetched_ms, last_ms, messages FROM threads "
                             "WHERE source = ? AND conversation_id IN ({})", source, conversation_ids)
        return {cid: CachedThread(fetched_ms, last_ms, json.loads(blob)) for cid, fetched_ms, last_ms, blob in rows}

    @_guarded
    def put_threads(self, source: str, threads: Mapping[str, CachedThread]) -> None:
        """Store whole threads (a thread written again replaces the old one), in one transaction."""
        if not threads:
            return
        with self._transaction() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO threads VALUES (?, ?, ?, ?, ?, ?)",
                [(source, cid, t.fetched_ms, t.last_ms, len(t.messages),
                  json.dumps(t.messages, ensure_ascii=False).encode("utf-8")) for cid, t in threads.items()])

    @_guarded
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

    @_guarded
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


# The claim owners of this process whose fetch is still going (claimed, not yet released).
_OWNERS_HERE: set[str] = set()


def _alive(owner: str) -> bool:
    """Whether the fetch that made a claim (``"<pid>-..."``, on this machine: the cache is a
    local file) is still going: its process is running and, when that is this process, the fetch
    has not ended. A process killed mid-fetch, or a fetch of this one whose release failed (a full
    disk: ``sync --follow``'s next pass), leaves claims that no one honours."""
    pid = owner.split("-", 1)[0]
    if not pid.isdigit():
        return True
    if int(pid) == os.getpid():
        return owner in _OWNERS_HERE
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, as another user's process
    return True


def _heal_total_tokens(runs: pd.DataFrame) -> pd.DataFrame:
    """Caches written by early versions stored ``total_tokens`` 0 for a run without
    ``token_usage``: missing numbers stay missing (never 0), so such a 0 is read as missing."""
    if {"total_tokens", "input_tokens", "output_tokens"} <= set(runs.columns):
        wrong = (runs["total_tokens"] == 0) & runs["input_tokens"].isna() & runs["output_tokens"].isna()
        if wrong.any():
            runs.loc[wrong.fillna(False).to_numpy(), "total_tokens"] = pd.NA
    return runs


def _last_of_each(keys: list[pa.Array | pa.ChunkedArray]) -> np.ndarray:
    """Row numbers of the last row of each distinct key, in row order."""
    n = len(keys[0])
    table = pa.table({f"k{i}": k for i, k in enumerate(keys)} | {"row": pa.array(np.arange(n))})
    last = table.group_by([f"k{i}" for i in range(len(keys))], use_threads=False).aggregate([("row", "max")])
    return np.sort(last.column("row_max").to_numpy())


def _latest(runs: pa.Table, calls: pa.Table, run_segments: np.ndarray, call_segments: np.ndarray,
            wanted: pa.Array | None, *, unique: bool) -> tuple[pa.Table, pa.Table]:
    """Each run once (its newest copy, and that copy's tool calls), of ``wanted`` ids or all;
    ``unique`` says that no run has two copies (the index knows: no hashing of ids needed).

    A cache written before runs were deduplicated may hold a run twice, even in one segment:
    it heals here, on read, and for good at the next compaction."""
    if unique and wanted is None:
        return runs, calls
    keep = np.ones(runs.num_rows, dtype=bool)
    if not unique:
        keep[:] = False
        keep[_last_of_each([runs["id"]])] = True
    if wanted is not None:
        keep &= pc.is_in(runs["id"], value_set=wanted).to_numpy(zero_copy_only=False)
    runs = runs.filter(pa.array(keep))
    if calls.num_rows:
        # A call belongs to the kept copy of its run: same run id, same segment.
        def key(ids: Any, segments: np.ndarray) -> pa.Array:
            return pc.binary_join_element_wise(pc.cast(ids, pa.string()),
                                               pa.array(segments.astype(str)), "|")
        run_keys = key(runs["id"], run_segments[keep])
        call_keys = key(calls["agent_run_id"], call_segments)
        mask = pc.is_in(call_keys, value_set=run_keys)
        calls = calls.filter(mask)
        if not unique and calls.num_rows:  # one copy's calls, if a segment held two
            calls = calls.take(_last_of_each([call_keys.filter(mask), calls["step"]]))
    return runs, calls


@dataclass(frozen=True)
class CacheInfo:
    """What :func:`cache_info` reports: the file, its size, one row per API source, and what
    is wrong with the file if it cannot be used (``problem``; None when it is fine)."""

    path: Path
    size_bytes: int
    sources: pd.DataFrame
    problem: str | None = None

    def __repr__(self) -> str:
        lines = [f"Conduit run cache: {self.path} ({self.size_bytes / 1e6:.1f} MB)"]
        if self.problem:
            lines.append(f"  PROBLEM: {self.problem}")
        elif self.sources.empty:
            lines.append("  (empty)")
        else:
            lines.append(self.sources.to_string(index=False))
        return "\n".join(lines)


def _open(cache: RunCache | str | os.PathLike[str] | None) -> RunCache:
    return cache if isinstance(cache, RunCache) else RunCache(cache)


def _files(path: Path) -> list[Path]:
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]


def cache_info(cache: RunCache | str | os.PathLike[str] | None = None) -> CacheInfo:
    """Where the run cache is, its size, and per API source: runs, with details, finished,
    oldest and newest run, segments. A file that cannot be used says why in ``problem``."""
    try:
        store = _open(cache)
    except CacheError as exc:
        path = exc.path or default_cache_path()
        size = sum(p.stat().st_size for p in _files(path))
        empty = pd.DataFrame(columns=["source", "runs", "with_details", "finished", "oldest",
                                      "newest", "segments"])
        return CacheInfo(path, size, empty, problem=str(exc))
    try:
        return store.info()
    finally:
        if store is not cache:
            store.close()


def clear_cache(cache: RunCache | str | os.PathLike[str] | None = None, *, source: str | None = None) -> int:
    """Empty the run cache (or only one API source's runs); returns the number of runs removed.

    A damaged file that is certainly a conduit-notebook cache (marked as one, or in the toolkit's
    own cache directory) is deleted and started afresh; then 0 is returned. Anything else raises
    :class:`CacheError` and is left as it is: a file that is not a cache (a CSV, another
    application's database), one locked by another process, one from a newer version, and a
    damaged file when only one ``source`` was asked to be cleared."""
    try:
        store = _open(cache)
    except CacheError as exc:
        # Only a damaged file that is certainly this toolkit's cache is replaced: never one
        # locked by another process (that is not damage), never one that is not a cache, and
        # never a whole file when one source was asked for.
        if (not isinstance(exc.path, Path) or exc.reason != "damaged" or source is not None
                or not removable(exc.path)):
            raise
        for file in _files(exc.path):
            file.unlink()
        RunCache(exc.path).close()
        return 0
    try:
        return store.clear(source)
    finally:
        if store is not cache:
            store.close()
