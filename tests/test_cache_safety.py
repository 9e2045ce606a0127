"""`cache clear` and the cache never delete or change a file that is not this toolkit's cache,
and a lock held by another process is never taken for damage (issue 23, items 1 and 2)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

from conduit_notebook import CacheError, RunCache, cache_segments, clear_cache, runs_frame
from conduit_notebook import cache_store as cache_module
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


def test_a_cache_from_an_early_version_with_zero_total_tokens_is_healed(tmp_path):
    # Commit 1312090 stored total_tokens 0 for runs without token_usage.
    import pyarrow as pa

    path = tmp_path / "runs.sqlite"
    records = _records(30)
    no_usage = [r["id"] for r in records if r.get("token_usage") is None]
    assert no_usage
    with RunCache(path) as store:
        store.put("src", records, detailed=True)
    conn = sqlite3.connect(path)
    segment, blob = conn.execute("SELECT segment, runs FROM segments").fetchone()
    table = cache_segments.from_bytes(blob)  # writing what the old version wrote
    totals = table["total_tokens"].to_pylist()
    totals = [0 if t is None else t for t in totals]
    table = table.set_column(table.column_names.index("total_tokens"), "total_tokens",
                             pa.array(totals, type=table.schema.field("total_tokens").type))
    conn.execute("UPDATE segments SET runs = ? WHERE segment = ?", (cache_segments.to_bytes(table), segment))
    conn.commit()
    conn.close()
    with RunCache(path) as store:
        runs, _ = store.load("src")
    healed = runs.set_index(runs["id"].astype(str))["total_tokens"]
    assert healed[no_usage].isna().all()
    assert (healed.drop(no_usage) > 0).all()


def test_load_reads_one_snapshot_while_another_process_writes(tmp_path):
    # The segments and the index count were two reads: a write between them kept copies of runs
    # (InvalidIndexError in newest_first in 3 of 5 runs).
    path = tmp_path / "runs.sqlite"
    records = _records(300)
    with RunCache(path) as store:
        store.put("src", records, detailed=True)
    writer = subprocess.Popen([sys.executable, "-c", (
        "import sys, json\n"
        "from conduit_notebook import RunCache\n"
        "from conduit_notebook.demo import DemoData\n"
        "from datetime import datetime, timezone\n"
        "records = DemoData(runs=300, agents=1, seed=0, end=datetime(2026, 11, 20, 15, tzinfo=timezone.utc)).records()\n"
        f"store = RunCache({str(path)!r})\n"
        "for i in range(60):\n"
        "    store.put('src', records[i % 10 * 30:(i % 10 + 1) * 30], detailed=True)\n")])
    try:
        loads = 0
        with RunCache(path) as store:
            while writer.poll() is None and loads < 200:
                runs, _ = store.load("src")
                assert runs["id"].is_unique and len(runs) == 300
                loads += 1
    finally:
        writer.wait(timeout=60)
    assert writer.returncode == 0 and loads > 0


def test_a_write_between_reading_segments_and_counting_the_index_changes_nothing(tmp_path, monkeypatch):
    # Deterministically: another connection writes new runs while the first segment is read.
    path = tmp_path / "runs.sqlite"
    first, second = _records(40)[:20], DemoData(runs=40, agents=1, seed=5, end=DEMO_END).records()
    with RunCache(path) as store:
        store.put("src", first, detailed=True)
        store.put("src", first[:10], detailed=True)  # copies: the count decides de-duplication
    real = cache_segments.from_bytes
    other = RunCache(path)
    calls = {"n": 0}

    def reading(blob):
        calls["n"] += 1
        if calls["n"] == 1:
            other.put("src", second, detailed=True)  # committed by another connection mid-read
        return real(blob)

    monkeypatch.setattr(cache_module, "from_bytes", reading)
    with RunCache(path) as store:
        runs, _ = store.load("src")
    other.close()
    assert runs["id"].is_unique and len(runs) == 20  # the snapshot taken before the write


def test_a_full_disk_says_disk_full_and_keeps_what_is_stored(tmp_path):
    # A real full disk: a 600 KB tmpfs in a private mount namespace (root, unshare).
    import shutil

    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare to mount a small tmpfs")
    folder = tmp_path / "small"
    folder.mkdir()
    probe = f"""
import sys
from datetime import datetime, timezone
from conduit_notebook import CacheError, RunCache
from conduit_notebook.demo import DemoData
end = datetime(2026, 11, 20, 15, tzinfo=timezone.utc)
path = {str(folder / 'runs.sqlite')!r}
with RunCache(path) as store:
    store.put("src", DemoData(runs=30, agents=1, seed=0, end=end).records(), detailed=True)
    try:
        for seed in range(1, 200):
            store.put("src", DemoData(runs=300, agents=1, seed=seed, end=end).records(), detailed=True)
    except CacheError as exc:
        print("ERROR", exc.reason, exc)
    runs, _ = store.load("src")
    print("KEPT", len(runs))
"""
    script = f"mount -t tmpfs -o size=600k tmpfs {folder} && {sys.executable} -c \"$PROBE\""
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PROBE": probe}, timeout=120)
    if "mount" in done.stderr and done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    assert "ERROR disk_full" in done.stdout, done.stdout + done.stderr[-2000:]
    assert "is full" in done.stdout and "cache clear" not in done.stdout and "rollback" not in done.stdout
    kept = int(done.stdout.split("KEPT")[1].split()[0])
    assert kept >= 30  # what was stored before the disk filled is still there


def test_a_write_that_sqlite_rolled_back_itself_keeps_its_cause(tmp_path):
    # On a full disk SQLite may end the transaction itself before the error reaches us; the
    # ROLLBACK that followed then raised "cannot rollback - no transaction is active", which
    # hid the cause and read as "damaged ... cache clear". A trigger that rolls back with the
    # message of a full disk does the same on a real file, deterministically.
    path = tmp_path / "runs.sqlite"
    with RunCache(path) as store:
        store.put("a", _records(10), detailed=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TRIGGER full BEFORE INSERT ON runs BEGIN "
                 "SELECT RAISE(ROLLBACK, 'database or disk is full'); END")
    conn.commit()
    conn.close()
    with RunCache(path) as store:
        with pytest.raises(CacheError) as caught:
            store.put("b", DemoData(runs=15, agents=1, seed=1, end=DEMO_END).records(), detailed=True)
        message = str(caught.value)
        assert caught.value.reason == "disk_full", message
        assert "rollback" not in message and "cache clear" not in message and "damaged" not in message
        assert len(store.load("a")[0]) == 10 and len(store.load("b")[0]) == 0  # what was stored is kept
        freed = sqlite3.connect(path)
        freed.execute("DROP TRIGGER full")  # space freed: the same cache takes the write
        freed.commit()
        freed.close()
        assert store.put("b", DemoData(runs=15, agents=1, seed=1, end=DEMO_END).records(), detailed=True) == 15
