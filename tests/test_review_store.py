"""The verdict store never loses a verdict: torn rows, missing headers, concurrent writers."""

from __future__ import annotations

import threading

import pytest

from conduit_notebook import ReviewStore
from conduit_notebook.review import REVIEW_COLUMNS


def add(store: ReviewStore, run: str, verdict: str = "correct", **kwargs) -> None:
    store.add(agent_run_id=run, agent_id="ag1", disposition="resolved", verdict=verdict, reviewer="ana", **kwargs)


def test_a_torn_last_row_is_kept_aside_and_the_next_verdict_is_whole(tmp_path):
    path = tmp_path / "reviews.csv"
    store = ReviewStore(path)
    add(store, "ar1")
    add(store, "ar2", "wrong", reviewed_disposition="escalated", note="guest wanted a manager")
    with open(path, "ab") as handle:  # a crash in the middle of an append
        handle.write(b'ar3,ag1,resolved,wrong,handed_off,"the guest said')
    with pytest.warns(UserWarning, match="1 row"):
        frame = store.load()
    assert list(frame["agent_run_id"]) == ["ar1", "ar2"]
    assert len(store.rejected) == 1 and "torn" in store.rejected.iloc[0]["reason"]
    assert store.rejected.iloc[0]["text"].startswith("ar3,ag1")
    add(store, "ar4")  # after the crash the review goes on
    with pytest.warns(UserWarning):
        frame = store.load()
    assert list(frame["agent_run_id"]) == ["ar1", "ar2", "ar4"]
    assert frame.loc[1, "note"] == "guest wanted a manager"
    assert len(store.rejected) == 1
    assert store.reviewed("ana") == {"ar1", "ar2", "ar4"}


def test_a_torn_row_without_quotes_does_not_glue_onto_the_next(tmp_path):
    path = tmp_path / "reviews.csv"
    store = ReviewStore(path)
    add(store, "ar1")
    with open(path, "ab") as handle:
        handle.write(b"ar2,ag1,reso")
    add(store, "ar3")
    with pytest.warns(UserWarning):
        frame = store.load()
    assert list(frame["agent_run_id"]) == ["ar1", "ar3"]
    assert list(store.rejected["line"]) == [3]


def test_a_file_without_header_and_foreign_rows(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text("ar1,ag1,resolved,correct,resolved,,ana,2026-11-01T10:00:00+00:00\r\n"
                    "ar2,ag1,escalated,wrong,handed_off,asked for a human,ana,2026-11-01T10:01:00+00:00\r\n"
                    "date,amount\r\n2026-11-01,12.5\r\n")
    store = ReviewStore(path)
    with pytest.warns(UserWarning, match="2 row"):
        frame = store.load()
    assert list(frame["agent_run_id"]) == ["ar1", "ar2"]
    assert list(frame["verdict"]) == ["correct", "wrong"]
    assert str(frame["reviewed_at"].dtype).endswith(", UTC]")
    assert len(store.rejected) == 2


def test_a_header_in_another_order_is_read_by_name(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text("verdict,agent_run_id,reviewer\r\ncorrect,ar1,ana\r\n")
    frame = ReviewStore(path).load()
    assert frame.loc[0, "agent_run_id"] == "ar1" and frame.loc[0, "verdict"] == "correct"
    assert list(frame.columns) == REVIEW_COLUMNS


def test_writers_creating_the_file_at_once_write_one_header(tmp_path):
    for attempt in range(5):
        path = tmp_path / f"reviews{attempt}.csv"
        start = threading.Barrier(8)

        def write(k: int, path=path, start=start) -> None:
            store = ReviewStore(path)
            start.wait()
            for j in range(5):
                add(store, f"ar{k}_{j}")

        threads = [threading.Thread(target=write, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        text = path.read_text()
        assert text.count("agent_run_id,") == 1 and text.startswith("agent_run_id,")
        assert len(ReviewStore(path).load(latest=False)) == 40


def test_wrong_with_the_recorded_disposition_is_refused(tmp_path):
    store = ReviewStore(tmp_path / "reviews.csv")
    with pytest.raises(ValueError, match="is the recorded disposition"):
        add(store, "ar1", "wrong", reviewed_disposition="Resolved ")
    with pytest.raises(ValueError, match="needs reviewed_disposition"):
        add(store, "ar1", "wrong")
    assert store.load().empty


def test_without_flock_as_on_windows_an_append_waits_for_the_lock(tmp_path, monkeypatch):
    # Windows has no fcntl: appends took no lock at all there (issue 21, item 13), so two notebooks
    # could interleave rows or both write the header. Now they take a filelock beside the store.
    from filelock import FileLock

    from conduit_notebook.review import store as store_module

    monkeypatch.setattr(store_module, "fcntl", None)
    path = tmp_path / "reviews.csv"
    store = ReviewStore(path)
    add(store, "ar1")
    writer = threading.Thread(target=add, args=(store, "ar2"))
    with FileLock(str(path.with_name("reviews.csv.lock"))):  # another writer holds the store
        writer.start()
        writer.join(timeout=1.0)
        assert writer.is_alive(), "the append did not wait for the lock"
        assert "ar2" not in path.read_text()
    writer.join(timeout=30)
    assert not writer.is_alive()
    assert list(store.load()["agent_run_id"]) == ["ar1", "ar2"]


def test_without_flock_writers_at_once_write_one_header_and_every_row(tmp_path, monkeypatch):
    from conduit_notebook.review import store as store_module

    monkeypatch.setattr(store_module, "fcntl", None)
    path = tmp_path / "reviews.csv"
    start = threading.Barrier(6)

    def write(k: int) -> None:
        store = ReviewStore(path)
        start.wait()
        for j in range(5):
            add(store, f"ar{k}_{j}")

    threads = [threading.Thread(target=write, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert path.read_text().count("agent_run_id,") == 1
    assert len(ReviewStore(path).load(latest=False)) == 30
