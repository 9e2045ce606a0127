"""`cache clear` and the cache never delete or change a file that is not this toolkit's cache,
and a lock held by another process is never taken for damage (issue 23, items 1 and 2)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

from conduit_notebook import CacheError, RunCache, clear_cache, runs_frame
from conduit_notebook import cache as cache_module
from conduit_notebook.cache import APPLICATION_ID, file_kind
from conduit_notebook.demo import DemoData

from .conftest import DEMO_END


def _cli(*args, env_cache):
    env = {**os.environ, "CONDUIT_NOTEBOOK_CACHE": str(env_cache)}
    return subprocess.run([sys.executable, "-m", "conduit_notebook.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def _records(n=20):
    return DemoData(runs=n, agents=1, seed=0, end=DEMO_END).records()


def test_cache_clear_leaves_a_csv_alone(tmp_path):
    reviews = tmp_path / "reviews.csv"
    reviews.write_text("agent_run_id,verdict\nar1,correct\n")
    os.chmod(reviews, 0o644)
    result = _cli("cache", "clear", env_cache=reviews)
    assert result.returncode == 1, result.stderr
    assert "not a conduit-notebook cache" in result.stderr and "left as it is" in result.stderr
    assert reviews.read_text() == "agent_run_id,verdict\nar1,correct\n"
    assert reviews.stat().st_mode & 0o777 == 0o644
    with pytest.raises(CacheError, match="not a conduit-notebook cache") as caught:
        clear_cache(reviews)
    assert caught.value.reason == "foreign" and reviews.exists()


@pytest.mark.parametrize("with_runs_table", [True, False])
def test_another_applications_sqlite_file_is_never_deleted_nor_changed(tmp_path, with_runs_table):
    path = tmp_path / "app.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE runs (id TEXT, km REAL)" if with_runs_table else "CREATE TABLE notes (t TEXT)")
    conn.execute("INSERT INTO runs VALUES ('a', 5.2)" if with_runs_table else "INSERT INTO notes VALUES ('x')")
    conn.commit()
    conn.close()
    os.chmod(path, 0o644)
    before = path.read_bytes()
    with pytest.raises(CacheError, match="not a conduit-notebook cache"):
        RunCache(path)
    with pytest.raises(CacheError, match="not a conduit-notebook cache"):
        clear_cache(path)
    result = _cli("cache", "clear", env_cache=path)
    assert result.returncode == 1 and "left as it is" in result.stderr
    assert path.read_bytes() == before and path.stat().st_mode & 0o777 == 0o644  # no table added, no chmod


def test_a_cache_is_marked_and_an_older_unmarked_one_is_adopted(tmp_path):
    path = tmp_path / "runs.sqlite"
    with RunCache(path) as store:
        store.put("src", _records(), detailed=True)
    assert file_kind(path) == "ours"
    assert int.from_bytes(path.read_bytes()[68:72], "big") == APPLICATION_ID
    # A cache written before the mark: its tables say it is one; it is kept and marked.
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA application_id = 0")
    conn.commit()
    conn.close()
    assert file_kind(path) == "sqlite"
    with RunCache(path) as store:
        runs, _ = store.load("src")
    assert len(runs) == 20 and file_kind(path) == "ours"
    assert clear_cache(path) == 20


def test_a_damaged_cache_of_ours_is_replaced_but_not_for_one_source(tmp_path):
    path = tmp_path / "runs.sqlite"
    with RunCache(path) as store:
        store.put("src", _records(), detailed=True)
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the schema page, garbled; the header says it is ours
    path.write_bytes(bytes(data))
    with pytest.raises(CacheError) as caught:
        clear_cache(path, source="src")  # one source asked: never the whole file
    assert path.read_bytes() == bytes(data)
    assert caught.value.reason == "damaged"
    assert clear_cache(path) == 0 and file_kind(path) == "ours"


def test_clear_of_one_source_under_another_writer_waits_then_refuses(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module, "LOCK_WAIT_S", 0.5)
    path = tmp_path / "runs.sqlite"
    with RunCache(path) as store:
        store.put("a", _records(10), detailed=True)
        store.put("b", DemoData(runs=15, agents=1, seed=1, end=DEMO_END).records(), detailed=True)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing
    try:
        with pytest.raises(CacheError, match="locked by another process") as caught:
            clear_cache(path, source="a")
        assert caught.value.reason == "locked"
        with pytest.raises(CacheError, match="locked by another process"):
            clear_cache(path)  # not even the whole file: locked is not damaged
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with RunCache(path) as store:  # nothing was lost
        assert len(store.load("a")[0]) == 10 and len(store.load("b")[0]) == 15
    assert clear_cache(path, source="a") == 10
    with RunCache(path) as store:
        assert len(store.load("a")[0]) == 0 and len(store.load("b")[0]) == 15


def test_a_cache_opens_for_reading_while_another_process_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module, "LOCK_WAIT_S", 0.5)
    path = tmp_path / "runs.sqlite"
    with RunCache(path) as store:
        store.put("a", _records(10), detailed=True)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with RunCache(path) as store:  # `cache info` during a sync: no write lock needed
            assert len(store.load("a")[0]) == 10
            assert runs_frame(_records(10))["id"].isin(store.load("a")[0]["id"]).all()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
