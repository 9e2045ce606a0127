"""The verdict store: disposition reviews appended to a CSV file as they are given.

A reviewer reads a run and says whether its disposition was right: ``correct``, ``wrong`` (with
the disposition it should have had) or ``unsure``. Each verdict is appended to a CSV file the
moment it is given (flushed and synced), so nothing is lost on a kernel restart, and a review
resumes where it stopped.
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from filelock import FileLock

try:  # POSIX: appends lock the file itself
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


__all__ = ["REVIEW_COLUMNS", "VERDICTS", "ReviewStore"]

VERDICTS = ("correct", "wrong", "unsure")
REVIEW_COLUMNS = ["agent_run_id", "agent_id", "disposition", "verdict", "reviewed_disposition",
                  "note", "reviewer", "reviewed_at"]


class ReviewStore:
    """Verdicts in a CSV file, one row each, appended as they are given.

    The latest verdict of a reviewer on a run wins (a reviewer may change their mind). Several
    writers may share a file (two notebooks, two reviewers): each append takes an exclusive lock
    (POSIX ``flock`` on the file; where there is no ``flock``, as on Windows, a ``filelock`` lock
    on ``<store>.lock`` beside it, since Windows' own byte locks would also stop readers) and writes the header together with the first row, so a new file never gets
    two headers and rows never interleave. A row torn by a crash mid-append is closed off before
    the next append, so it cannot swallow the next verdict.

    Reading keeps every whole row; a torn or foreign row (wrong number of fields, unknown verdict)
    is kept aside in :attr:`rejected` (line, reason, text) with a warning, not lost; the file is
    never rewritten. A file without a header line is read with the standard columns.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        if self.path.is_dir():
            raise ValueError(f"store must be a CSV file path, not a directory: {self.path}")
        #: Rows of the file that could not be read as verdicts: ``line``, ``reason``, ``text``.
        self.rejected = pd.DataFrame({"line": pd.Series(dtype="int64"), "reason": pd.Series(dtype=object),
                                      "text": pd.Series(dtype=object)})

    def __repr__(self) -> str:
        return f"ReviewStore({str(self.path)!r})"

    def add(self, *, agent_run_id: str, agent_id: str | None, disposition: str | None, verdict: str,
            reviewed_disposition: str | None = None, note: str = "", reviewer: str = "") -> dict[str, Any]:
        """Append one verdict (flushed and synced) and return it as a dict.

        ``verdict`` is ``correct``, ``wrong`` or ``unsure``; ``wrong`` needs ``reviewed_disposition``
        (the disposition the run should have had), which must differ from ``disposition``. Without
        ``disposition`` this cannot be checked here; :func:`review_report` checks it against the runs.
        """
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
        if not isinstance(agent_run_id, str) or not agent_run_id:
            raise ValueError(f"agent_run_id must be the run's id (a non-empty string), got {agent_run_id!r}")
        reviewed_disposition = (reviewed_disposition or "").strip() or None
        if verdict == "wrong" and not reviewed_disposition:
            raise ValueError("a 'wrong' verdict needs reviewed_disposition: the disposition the run should have had")
        if (verdict == "wrong" and disposition and reviewed_disposition
                and reviewed_disposition.casefold() == str(disposition).strip().casefold()):
            raise ValueError(
                f"reviewed_disposition {reviewed_disposition!r} is the recorded disposition: a 'wrong' verdict "
                "needs the disposition the run should have had instead (or mark it 'correct')")
        if verdict == "correct":
            reviewed_disposition = disposition
        row = {
            "agent_run_id": agent_run_id, "agent_id": agent_id or "", "disposition": disposition or "",
            "verdict": verdict, "reviewed_disposition": reviewed_disposition or "", "note": note or "",
            "reviewer": reviewer or "", "reviewed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self._append(row)
        return row

    def _append(self, row: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b") as handle:
            with self._locked(handle):
                size = handle.seek(0, os.SEEK_END)
                handle.seek(0)
                columns = self._columns(handle.read(65536)) if size else REVIEW_COLUMNS
                text = io.StringIO()
                # In the file's own column order (a header edited by hand, or from another tool).
                csv.DictWriter(text, fieldnames=columns, restval="").writerow(
                    {c: row.get(c, "") for c in columns})
                prefix = b""
                if size == 0:
                    header = io.StringIO()
                    csv.writer(header).writerow(REVIEW_COLUMNS)
                    prefix = header.getvalue().encode()
                else:
                    handle.seek(size - 1)
                    if handle.read(1) != b"\n":
                        # A torn last row: end it (closing an open quote) so it stays a row of its own.
                        handle.seek(0)
                        open_quote = handle.read().count(b'"') % 2 == 1
                        prefix = (b'"' if open_quote else b"") + b"\r\n"
                    handle.seek(0, os.SEEK_END)
                # One write: header (for a new file), the end of a torn row, and the verdict.
                handle.write(prefix + text.getvalue().encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())  # the verdict survives a kernel (or machine) restart

    @contextmanager
    def _locked(self, handle: Any) -> Iterator[None]:
        """The store's exclusive append lock, held for the block."""
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        else:
            with FileLock(str(self.lock_path)):
                yield

    @property
    def lock_path(self) -> Path:
        """The lock file taken by appends where the platform has no ``flock`` (Windows)."""
        return self.path.with_name(self.path.name + ".lock")

    def _columns(self, head: bytes) -> list[str]:
        """The columns of an existing file, from its header line, to write a row by; a file
        whose header cannot be mapped, or that is not UTF-8 comma-separated text, is refused with
        what to do (a verdict filed under the wrong column would be worse than none)."""
        first = _first_line(self._text(head, whole=False))
        if first is None:
            return REVIEW_COLUMNS
        header = next(csv.reader([first]))
        if not {"agent_run_id", "verdict"} <= set(header):
            return REVIEW_COLUMNS  # no header line: rows in the standard order, as read
        unknown = [c for c in REVIEW_COLUMNS if c not in header and c not in ("note", "reviewer", "reviewed_at")]
        if unknown or len(set(header)) != len(header):
            raise ValueError(f"{self.path}: its header ({', '.join(header)}) "
                             + (f"lacks {', '.join(unknown)}" if unknown else "repeats a column")
                             + ": no verdict was written. Use a new store file, or fix the header: "
                             + ", ".join(REVIEW_COLUMNS))
        return header

    def _text(self, data: bytes, *, whole: bool = True) -> str:
        """The file's bytes as text: UTF-8 (a BOM is dropped); a ValueError that says what to do for
        anything else (a file saved by a spreadsheet in cp1252, or with ';' between fields)."""
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            if whole or exc.start < len(data) - 4:  # not just a character cut at the end of a read
                raise ValueError(f"{self.path} is not UTF-8 text (saved as cp1252 or Latin-1 by a spreadsheet?): "
                                 "save it as CSV UTF-8, or use a new store file. Nothing was changed.") from None
            text = data[: exc.start].decode("utf-8-sig")
        first = _first_line(text)
        if first is not None and ";" in first and "," not in first and "agent_run_id" in first:
            raise ValueError(f"{self.path} has ';' between its fields (a spreadsheet's CSV in some locales); "
                             "the store is comma-separated: save it with commas, or use a new store file. "
                             "Nothing was changed.")
        return text

    def load(self, *, latest: bool = True) -> pd.DataFrame:
        """Every verdict (or, with ``latest``, each reviewer's last word on each run).

        Rows that cannot be read go to :attr:`rejected`, with a warning. A file that is not
        UTF-8 comma-separated text raises a ValueError that says so (a BOM is fine).
        """
        empty = pd.DataFrame({c: pd.Series(dtype="string") for c in REVIEW_COLUMNS})
        empty["reviewed_at"] = pd.Series(dtype="datetime64[ns, UTC]")
        if not self.path.exists() or self.path.stat().st_size == 0:
            self.rejected = self.rejected.iloc[0:0]
            return empty
        rows, rejected = _read_rows(self._text(self.path.read_bytes()))
        self.rejected = pd.DataFrame(rejected, columns=["line", "reason", "text"]).astype({"line": "int64"})
        if rejected:
            warnings.warn(f"{self.path}: {len(rejected)} row(s) could not be read as verdicts (torn by a crash or "
                          "not from this store); they are kept in the file and listed in ReviewStore.rejected",
                          UserWarning, stacklevel=2)
        if not rows:
            return empty
        frame = pd.DataFrame(rows, columns=REVIEW_COLUMNS).astype("string")
        frame["reviewed_at"] = pd.to_datetime(frame["reviewed_at"], utc=True, errors="coerce", format="ISO8601")
        if latest:
            frame = frame.drop_duplicates(["agent_run_id", "reviewer"], keep="last").reset_index(drop=True)
        return frame

    def reviewed(self, reviewer: str | None = None) -> set[str]:
        """The ids of the runs judged (by ``reviewer``, if given)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = self.load()
        if reviewer is not None:
            frame = frame[frame["reviewer"] == (reviewer or "")]
        return set(frame["agent_run_id"])


def _whole_timestamp(text: str) -> bool:
    """An ISO 8601 time to the second at least, as the store writes it (a torn row cuts it)."""
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return len(text) >= 19


def _first_line(text: str) -> str | None:
    """The first non-empty line, or None."""
    for line in text.splitlines():
        if line.strip():
            return line
    return None


def _read_rows(text: str) -> tuple[list[list[str]], list[tuple[int, str, str]]]:
    """Whole verdict rows (in REVIEW_COLUMNS order) and the rejected ones (line, reason, text)."""
    # A long note (or a torn one that runs to the end of the file) is longer than csv's default
    # field limit of 128 KB, which made the whole store unreadable: allow any field the file holds.
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, len(text) + 1))
    try:
        return _parse_rows(text)
    finally:
        csv.field_size_limit(limit)


def _parse_rows(text: str) -> tuple[list[list[str]], list[tuple[int, str, str]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[list[str]] = []
    rejected: list[tuple[int, str, str]] = []
    columns: list[str] | None = None
    line = 1
    for record in reader:
        start, line = line, reader.line_num + 1
        if not record or record == [""]:
            continue
        if columns is None:
            if set(record) >= {"agent_run_id", "verdict"}:
                columns = record  # the header (columns in any order; unknown ones ignored)
                continue
            columns = REVIEW_COLUMNS  # no header: the standard columns
        if len(record) != len(columns):
            rejected.append((start, f"{len(record)} fields, expected {len(columns)} (a torn or foreign row)",
                             ",".join(record)))
            continue
        values = dict(zip(columns, record, strict=False))
        if values.get("verdict") not in VERDICTS or not values.get("agent_run_id"):
            rejected.append((start, f"not a verdict row (verdict {values.get('verdict')!r})", ",".join(record)))
            continue
        stamp = values.get("reviewed_at") or ""
        if stamp and not _whole_timestamp(stamp):
            rejected.append((start, f"its reviewed_at {stamp!r} is not a whole time (a row torn by a crash?)",
                             ",".join(record)))
            continue
        rows.append([values.get(c, "") for c in REVIEW_COLUMNS])
    return rows, rejected

