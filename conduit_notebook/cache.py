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

The file (:mod:`.cache_file`), its segments (:mod:`.cache_segments`), who is fetching which trace
(:mod:`.cache_claims`) and the store itself (:mod:`.cache_store`) are modules of their own; their
public names are importable from here, as they always were.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .cache_file import APPLICATION_ID, CacheInfo, file_kind, removable
from .cache_store import COMPACT_AFTER, LOCK_WAIT_S, MIN_MS, CachedRun, CachedThread, RunCache, fingerprint
from .errors import CacheError
from .paths import default_cache_path

__all__ = ["APPLICATION_ID", "COMPACT_AFTER", "LOCK_WAIT_S", "MIN_MS", "CacheInfo", "CachedRun", "CachedThread",
           "RunCache", "cache_info", "clear_cache", "default_cache_path", "file_kind", "fingerprint", "removable"]


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
