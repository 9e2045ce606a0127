"""The review store reads and writes files as their header says, and says what is wrong with a
file it cannot use (issue 23, items 3 and 8): a verdict is never filed under the wrong column."""

from __future__ import annotations

import csv
import io
import warnings

import pytest

from conduit_notebook import ReviewStore
from conduit_notebook.review import REVIEW_COLUMNS


def _add(store, run="ar_new", **extra):
    return store.add(agent_run_id=run, agent_id="ag_1", disposition="resolved", verdict="correct",
                     reviewer="ana", **extra)


def test_a_store_with_an_extra_column_still_takes_verdicts(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(",".join([*REVIEW_COLUMNS, "shift"]) + "\n"
                    + "ar_1,ag_1,resolved,correct,resolved,,ana,2026-11-20T10:00:00+00:00,night\n")
    _add(ReviewStore(path))
    frame = ReviewStore(path).load()
    assert list(frame["agent_run_id"]) == ["ar_1", "ar_new"] and ReviewStore(path).rejected.empty
    rows = list(csv.reader(io.StringIO(path.read_text())))
    assert rows[-1][0] == "ar_new" and len(rows[-1]) == len(REVIEW_COLUMNS) + 1 and rows[-1][-1] == ""


@pytest.mark.parametrize("columns", [sorted(REVIEW_COLUMNS),
                                     ["agent_id", "agent_run_id", *REVIEW_COLUMNS[2:]]],
                         ids=["alphabetical", "ids-swapped"])
def test_verdicts_are_written_by_the_files_header(tmp_path, columns):
    path = tmp_path / "r.csv"
    path.write_text(",".join(columns) + "\n")
    _add(ReviewStore(path), run="ar_42")
    [row] = list(csv.DictReader(io.StringIO(path.read_text())))
    assert row["agent_run_id"] == "ar_42" and row["agent_id"] == "ag_1" and row["verdict"] == "correct"
    assert list(ReviewStore(path).load()["agent_run_id"]) == ["ar_42"]


def test_a_bom_and_reordered_columns_read_every_row(tmp_path):
    path = tmp_path / "r.csv"
    columns = list(reversed(REVIEW_COLUMNS))
    lines = [",".join(columns)] + [
        ",".join({"agent_run_id": f"ar_{i}", "agent_id": "ag", "disposition": "resolved", "verdict": "correct",
                  "reviewed_disposition": "resolved", "note": "", "reviewer": "ana",
                  "reviewed_at": "2026-11-20T10:00:00+00:00"}[c] for c in columns) for i in range(3)]
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")
    store = ReviewStore(path)
    assert list(store.load()["agent_run_id"]) == ["ar_0", "ar_1", "ar_2"] and store.rejected.empty
    _add(store, run="ar_3")
    assert list(ReviewStore(path).load()["agent_run_id"]) == ["ar_0", "ar_1", "ar_2", "ar_3"]


def test_semicolons_and_cp1252_get_a_clear_message_and_nothing_is_written(tmp_path):
    semicolons = tmp_path / "s.csv"
    semicolons.write_text(";".join(REVIEW_COLUMNS) + "\n")
    cp1252 = tmp_path / "c.csv"
    cp1252.write_bytes((",".join(REVIEW_COLUMNS) + "\nar_1,ag,resolved,correct,resolved,caf\xe9,ana,2026-11-20\n")
                       .encode("cp1252"))
    for path, message in ((semicolons, "';' between its fields"), (cp1252, "not UTF-8 text")):
        before = path.read_bytes()
        with pytest.raises(ValueError, match=message):
            ReviewStore(path).load()
        with pytest.raises(ValueError, match=message):
            _add(ReviewStore(path))
        assert path.read_bytes() == before


def test_a_header_that_cannot_be_mapped_is_refused(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("agent_run_id,verdict,comment\n")
    with pytest.raises(ValueError, match="lacks agent_id, disposition, reviewed_disposition"):
        _add(ReviewStore(path))
    assert path.read_text() == "agent_run_id,verdict,comment\n"


def test_a_note_over_128_kb_keeps_the_store_readable(tmp_path):
    path = tmp_path / "r.csv"
    store = ReviewStore(path)
    _add(store, run="ar_1", note="x" * 200_000)
    _add(store, run="ar_2")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame = ReviewStore(path).load()
    assert list(frame["agent_run_id"]) == ["ar_1", "ar_2"] and len(frame.loc[0, "note"]) == 200_000
    assert csv.field_size_limit() == 131072  # the process-wide limit is left as it was


def test_a_row_torn_inside_its_timestamp_is_kept_aside(tmp_path):
    path = tmp_path / "r.csv"
    store = ReviewStore(path)
    _add(store, run="ar_1")
    with open(path, "ab") as handle:  # a crash mid-append: all eight fields, the time cut short
        handle.write(b"ar_2,ag_1,resolved,correct,resolved,,ana,2026-11-20T1")
    with pytest.warns(UserWarning, match="could not be read"):
        frame = store.load()
    assert list(frame["agent_run_id"]) == ["ar_1"]
    assert "not a whole time" in store.rejected["reason"].iloc[0]


def test_report_reviews_of_an_image_exits_with_a_message(tmp_path, capsys):
    from conduit_notebook.cli import main

    image = tmp_path / "image.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    code = main(["report", "--demo", "--since", "2026-11-19", "--until", "2026-11-20", "--reviews", str(image),
                 "--out", str(tmp_path / "r.html"), "--traces", "none"])
    err = capsys.readouterr().err
    assert code == 2 and "not UTF-8 text" in err and "Traceback" not in err
