"""Disposition reviews: the verdict store and the report, as plain functions.

A reviewer reads a run and says whether its disposition was right: ``correct``, ``wrong`` (with
the disposition it should have had) or ``unsure``. Each verdict is appended to a CSV file the
moment it is given (flushed and synced), so nothing is lost on a kernel restart, and a review
resumes where it stopped. :func:`review_report` turns the verdicts into accuracy per disposition
(with Wilson 95% intervals), a confusion table and the agreement between reviewers.
"""

from __future__ import annotations

import csv
import io
import math
import os
import warnings
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from .ppi import METHOD as PPI_METHOD
from .ppi import ppi_accuracy, predictions_for
from .stats import Z95, wilson_interval, z_value

try:  # POSIX: appends lock the file
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["REVIEW_COLUMNS", "VERDICTS", "ReviewStore", "cohen_kappa", "kappa_interval", "review_plan",
           "review_report", "run_votes", "stratified_accuracy", "wilson_interval"]

VERDICTS = ("correct", "wrong", "unsure")
REVIEW_COLUMNS = ["agent_run_id", "agent_id", "disposition", "verdict", "reviewed_disposition",
                  "note", "reviewer", "reviewed_at"]
ACCURACY_COLUMNS = ["reviewed", "correct", "unsure", "accuracy", "ci_low", "ci_high"]
DISAGREEMENT_COLUMNS = ["agent_run_id", "disposition", "reviewer", "verdict", "reviewed_disposition", "note"]
#: A review sized by margin reviews at least this many runs of each disposition (or all it has).
MIN_PER_STRATUM = 10
DEFAULT_SAMPLE = 50
METHOD = ("stratified estimate (dispositions weighted by their share of the runs); stratified Wilson "
          "interval at Kish's effective sample size, with finite population correction")


class ReviewStore:
    """Verdicts in a CSV file, one row each, appended as they are given.

    The latest verdict of a reviewer on a run wins (a reviewer may change their mind). Several
    writers may share a file (two notebooks, two reviewers): each append takes an exclusive lock
    (POSIX ``flock``) and writes the header together with the first row, so a new file never gets
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
            "reviewer": reviewer or "", "reviewed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        self._append(row)
        return row

    def _append(self, row: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b") as handle:
            _lock(handle)
            try:
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
            finally:
                _unlock(handle)

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
        values = dict(zip(columns, record))
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


def _lock(handle: Any) -> None:
    if fcntl is not None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)


def _unlock(handle: Any) -> None:
    if fcntl is not None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def stratified_accuracy(correct: ArrayLike, judged: ArrayLike, population: ArrayLike, *,
                        confidence: float = 0.95, outside: ArrayLike | None = None) -> dict[str, float]:
    """A population accuracy from per-stratum samples, with its interval.

    Stratum ``h`` holds ``population[h]`` runs, of which ``judged[h]`` were judged (a simple random
    sample of the stratum) and ``correct[h]`` were right. The estimate is the stratified mean
    ``sum(W_h * p_h)`` with ``W_h = N_h / N``. Its interval is a **stratified Wilson interval with
    Kish's effective sample size**: the variance is ``sum(W_h^2 (1 - n_h/N_h) p~_h (1 - p~_h) / n_h)``
    (finite population correction per stratum; ``p~_h = (x_h + 0.5) / (n_h + 1)``, so that a small
    stratum judged all right or all wrong still adds its uncertainty), the effective sample size is
    ``p~ (1 - p~) / variance``, and the Wilson interval is taken at that size. A stratum that holds
    runs but has no judged ones cannot be estimated: the estimate is over the judged strata and the
    interval is widened to the worst case for the rest (``unreviewed_share``). Simulated coverage:
    see tests/test_review_stats.py.

    ``outside[h]`` counts judged runs of stratum ``h`` that are not among its ``population[h]`` runs
    (verdicts on runs missing from the population). They are not a sample *of* that population, so
    such a stratum gets no finite population correction (nor does one with more judged runs than
    runs): only a stratum whose own runs were all judged is a census with no interval left.

    Returns ``estimate``, ``ci_low``, ``ci_high``, ``half_width``, ``effective_n`` and
    ``unreviewed_share``.
    """
    z = z_value(confidence)
    x = np.asarray(correct, dtype="float64")
    n = np.asarray(judged, dtype="float64")
    size = np.asarray(population, dtype="float64")
    out = {"estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan, "half_width": math.nan,
           "effective_n": 0.0, "unreviewed_share": math.nan}
    if size.sum() <= 0:
        return out
    weight = size / size.sum()
    seen = (n > 0) & (size > 0)
    unreviewed = float(weight[~seen].sum())
    out["unreviewed_share"] = unreviewed
    if not seen.any():
        return out
    w = weight[seen] / weight[seen].sum()
    away = np.zeros_like(n) if outside is None else np.asarray(outside, dtype="float64")
    x, n, size, away = x[seen], n[seen], size[seen], away[seen]
    estimate = float((w * x / n).sum())
    smoothed = (x + 0.5) / (n + 1)
    # A finite population correction only for a stratum sampled from its own runs.
    fpc = np.where((away > 0) | (n > size), 1.0, np.clip(1 - n / size, 0.0, 1.0))
    variance = float((w**2 * fpc * smoothed * (1 - smoothed) / n).sum())
    if variance <= 0:  # every stratum fully judged: a census
        low = high = estimate
        effective = float(n.sum())
    else:
        p_tilde = float((w * smoothed).sum())
        effective = p_tilde * (1 - p_tilde) / variance
        low, high = wilson_interval(estimate * effective, effective, z)
    low, high = (1 - unreviewed) * low, (1 - unreviewed) * high + unreviewed
    out.update(estimate=estimate, ci_low=low, ci_high=high, half_width=(high - low) / 2, effective_n=effective)
    return out


def cohen_kappa(first: pd.Series, second: pd.Series) -> float:
    """Cohen's kappa between two raters' labels of the same items (nan if undefined)."""
    pairs = pd.DataFrame({"a": np.asarray(first, dtype=object), "b": np.asarray(second, dtype=object)}).dropna()
    if len(pairs) == 0:
        return math.nan
    codes, _ = pd.factorize(pd.concat([pairs["a"], pairs["b"]], ignore_index=True))
    return float(_kappas(codes[: len(pairs)], codes[len(pairs):], np.arange(len(pairs))[None, :])[0])


def _kappas(a: np.ndarray, b: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Kappa of labels ``a``/``b`` (integer codes) over each row of index ``samples``."""
    k = int(max(a.max(), b.max())) + 1
    one_a, one_b = np.eye(k)[a], np.eye(k)[b]
    observed = (a == b)[samples].mean(axis=1)
    expected = (one_a[samples].mean(axis=1) * one_b[samples].mean(axis=1)).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = (observed - expected) / (1 - expected)
    return np.where(expected >= 1, np.where(observed >= 1, 1.0, np.nan), kappa)


def kappa_interval(first: pd.Series, second: pd.Series, *, confidence: float = 0.95,
                   resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """A percentile bootstrap interval for Cohen's kappa (runs resampled with replacement)."""
    pairs = pd.DataFrame({"a": np.asarray(first, dtype=object), "b": np.asarray(second, dtype=object)}).dropna()
    if len(pairs) < 2:
        return (math.nan, math.nan)
    codes, _ = pd.factorize(pd.concat([pairs["a"], pairs["b"]], ignore_index=True))
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, len(pairs), size=(resamples, len(pairs)))
    values = _kappas(codes[: len(pairs)], codes[len(pairs):], samples)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return (math.nan, math.nan)
    tail = (1 - confidence) / 2
    return (float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail)))


def run_votes(results: pd.DataFrame) -> pd.DataFrame:
    """One verdict per run: the majority of its reviewers (each reviewer's latest word).

    ``correct`` or ``wrong`` when more reviewers said so than the other; a tie (or only
    ``unsure`` verdicts) is ``unsure``. A ``wrong`` run's ``reviewed_disposition`` is the one most
    of its ``wrong`` reviewers gave (alphabetical first on a tie). ``reviewers`` counts the votes.
    """
    frame = results.assign(agent_run_id=results["agent_run_id"].astype(object))
    if "reviewer" in frame:
        frame = frame.drop_duplicates(["agent_run_id", "reviewer"], keep="last")
    verdict = frame["verdict"].astype(object)
    groups = frame.assign(_correct=(verdict == "correct"), _wrong=(verdict == "wrong")).groupby("agent_run_id", sort=False)
    out = groups.last()
    correct, wrong = groups["_correct"].sum(), groups["_wrong"].sum()
    out["verdict"] = np.select([correct > wrong, wrong > correct], ["correct", "wrong"], "unsure")
    said_wrong = frame[verdict == "wrong"]
    mode = (said_wrong.groupby(["agent_run_id", said_wrong["reviewed_disposition"].astype(object).rename("_r")])
            .size().reset_index(name="k").sort_values(["agent_run_id", "k", "_r"], ascending=[True, False, True])
            .drop_duplicates("agent_run_id").set_index("agent_run_id")["_r"]) if len(said_wrong) else pd.Series(dtype=object)
    out["reviewed_disposition"] = np.where(out["verdict"] == "wrong", out.index.map(mode).to_numpy(),
                                           np.where(out["verdict"] == "correct", out["disposition"], None))
    out["reviewers"] = groups.size()
    return out.drop(columns=["_correct", "_wrong"]).reset_index()


def review_plan(runs: pd.DataFrame, n: int | None = None, *, margin: float | None = None,
                confidence: float = 0.95, by: str | None = "disposition", expected: float = 0.8,
                expected_agreement: float | None = None) -> pd.DataFrame:
    """How many runs to review in each stratum, and the interval that should give.

    With ``margin`` (e.g. ``0.05`` for ±5 points), the size and allocation are chosen so that the
    overall accuracy's interval is about ±``margin``: **Neyman allocation** (proportional to the
    stratum's size times its standard deviation, at the ``expected`` accuracy) with a floor of
    ``MIN_PER_STRATUM`` runs per
    stratum so that every disposition gets its own row, and the smallest total that reaches the
    margin (finite population correction included). With ``n``, each stratum gets the same number
    (all of a smaller one), which favours the per-disposition rows over the overall figure.

    ``expected`` is the accuracy the plan assumes. The default 0.8 is typical of agents (most of
    their dispositions right), so a plan for ±5% reaches about ±5% (tests/test_review_stats.py:
    within 0.7-1.05 of the margin on a simulated population at 86%). A wrong guess never gives a
    wrong interval: the interval comes from the verdicts, and ``DispositionReview`` shows it live
    against the target, so a lower accuracy costs a few more reviews and a higher one lets you stop
    early. ``expected=0.5`` is the worst case (375 reviews instead of 249 for ±5% here: the interval then
    comes out well inside the margin).

    ``expected_agreement``: with a judge on every run (``review_report(predictions=)``), how
    often it agrees with people (from a pilot, or stated): the plan then needs fewer reviews for
    the same margin. The variance it assumes is the human one times ``1 - 0.5 (2a - 1)^2``, a factor
    calibrated on benchmarks/sim_judge.py (the method's variance is 0.55 of the human one at
    a = 0.95 and 120 reviews, not the asymptotic 1 - (2a - 1)^2 = 0.19).

    One row per stratum and an "(all)" row: ``population``, ``weight`` (share of the population),
    ``sample`` and ``expected_half_width`` (the interval's half-width if accuracy is ``expected``).
    ``plan.attrs`` holds ``margin``, ``confidence`` and ``design``.
    """
    if n is not None and margin is not None:
        raise ValueError("pass n (a sample size) or margin (a target half-width such as 0.05), not both")
    if n is None and margin is None:
        n = DEFAULT_SAMPLE
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise ValueError(f"n must be a whole number >= 1, got {n!r}")
    if margin is not None and (not isinstance(margin, (int, float)) or isinstance(margin, bool) or not 0 < margin < 0.5):
        raise ValueError(f"margin must be a half-width between 0 and 0.5 (e.g. 0.05 for ±5 points), got {margin!r}")
    if not isinstance(expected, (int, float)) or not 0 < expected < 1:
        raise ValueError(f"expected must be an anticipated accuracy between 0 and 1, got {expected!r}")
    z = z_value(confidence)
    if expected_agreement is not None:
        if not isinstance(expected_agreement, (int, float)) or not 0.5 <= expected_agreement <= 1:
            raise ValueError(f"expected_agreement must be the share of runs a judge agrees with people on, "
                             f"between 0.5 and 1; got {expected_agreement!r}")
        # The same plan for a smaller spread: the accuracy whose p(1 - p) is the judge-assisted one.
        factor = 1 - 0.5 * (2 * expected_agreement - 1) ** 2
        expected = (1 + math.sqrt(1 - 4 * factor * expected * (1 - expected))) / 2
    if by is None:
        sizes = pd.Series({"(all runs)": len(runs)}, dtype="int64")
    else:
        if by not in runs:
            raise ValueError(f"review_plan needs the column {by}; pass the runs frame from fetch_runs() or runs_frame()")
        sizes = runs[by].value_counts(dropna=True).astype("int64")
        sizes = sizes[sizes > 0]
        sizes.index = sizes.index.astype(str)
        sizes = sizes.sort_index()
    population = sizes.to_numpy(dtype="float64")
    if margin is not None:
        sample = _allocation_for_margin(population, margin, z, expected)
        design = (f"Neyman allocation with a floor of {MIN_PER_STRATUM}, sized for ±{margin:.1%}"
                  + (f" with a judge agreeing {expected_agreement:.0%} of the time" if expected_agreement else ""))
    else:
        assert n is not None  # DEFAULT_SAMPLE when neither n nor margin is given
        sample = _equal_allocation(population, n)
        design = f"equal allocation of {n} runs"
    spread = expected * (1 - expected)
    with np.errstate(divide="ignore", invalid="ignore"):
        each = np.where(sample > 0, z * np.sqrt((1 - sample / population) * spread / sample), np.nan)
    overall = _planned_half_width(population, sample, z, spread)
    plan = pd.DataFrame({"population": population.astype("int64"), "weight": population / max(population.sum(), 1),
                         "sample": sample.astype("int64"), "expected_half_width": each}, index=sizes.index)
    plan.loc["(all)"] = [int(population.sum()), 1.0, int(sample.sum()), overall]
    plan = plan.astype({"population": "int64", "sample": "int64"})
    plan.index.name = by or "stratum"
    plan.attrs.update(margin=margin, confidence=confidence, design=design, by=by)
    return plan


def _planned_half_width(population: np.ndarray, sample: np.ndarray, z: float, spread: float) -> float:
    if population.sum() <= 0:
        return math.nan
    w = population / population.sum()
    if np.any((sample == 0) & (population > 0)):
        return math.inf
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(sample > 0, w**2 * (1 - sample / population) * spread / sample, 0.0)
    return float(z * math.sqrt(terms.sum()))


def _allocation_for_margin(population: np.ndarray, margin: float, z: float, expected: float) -> np.ndarray:
    spread = expected * (1 - expected)
    floor = np.minimum(population, MIN_PER_STRATUM)

    def allocate(total: int) -> np.ndarray:
        # Neyman: n_h proportional to N_h * S_h; one S for all strata at the planning accuracy.
        share = np.ceil(total * population / max(population.sum(), 1))
        return np.minimum(population, np.maximum(floor, share))

    low, high = 1, int(population.sum())
    if high == 0:
        return np.zeros_like(population)
    while low < high:  # the smallest total whose interval reaches the margin
        middle = (low + high) // 2
        if _planned_half_width(population, allocate(middle), z, spread) <= margin:
            high = middle
        else:
            low = middle + 1
    return allocate(low)


def _equal_allocation(population: np.ndarray, n: int) -> np.ndarray:
    quota = np.zeros_like(population)
    left = int(min(n, population.sum()))
    while left > 0:
        open_ = np.flatnonzero(quota < population)
        each = max(1, left // len(open_))
        for k in open_:
            take = int(min(each, population[k] - quota[k], left))
            quota[k] += take
            left -= take
            if left == 0:
                break
    return quota


def _recorded(frame: pd.DataFrame, runs: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The verdicts with their recorded disposition (from ``runs`` where a verdict lacks it), and
    the self-contradicting ones ('wrong' with the recorded disposition as the right one), which are
    turned into ``unsure``."""
    frame = frame.copy()
    for column in ("disposition", "reviewed_disposition", "verdict", "reviewer", "agent_id", "note"):
        if column in frame:
            values = frame[column].astype(object)
            frame[column] = values.where(values.notna() & (values != ""), None)
    if runs is not None and "id" in runs and "disposition" in runs:
        recorded = _by_id(runs, frame["agent_run_id"], "disposition")
        frame["disposition"] = frame["disposition"].fillna(frame["agent_run_id"].astype(object).map(recorded))
    same = (frame["verdict"].astype(object) == "wrong") & frame["disposition"].notna() \
        & frame["reviewed_disposition"].notna() \
        & (frame["disposition"].astype(str).str.strip().str.casefold()
           == frame["reviewed_disposition"].astype(str).str.strip().str.casefold())
    contradictions = frame.loc[same].reindex(columns=DISAGREEMENT_COLUMNS).reset_index(drop=True)
    if same.any():
        frame.loc[same, "verdict"] = "unsure"
    return frame, contradictions


def _by_id(runs: pd.DataFrame, ids: pd.Series, column: str) -> pd.Series:
    """``column`` of the runs whose id is in ``ids``, indexed by id (only those: runs may be large)."""
    wanted = runs[runs["id"].isin(set(ids.dropna().astype(str)))]
    values = pd.Series(wanted[column].astype(object).to_numpy(), index=wanted["id"].astype(object).to_numpy())
    return values[~values.index.duplicated()]


def _population(runs: pd.DataFrame, group: str | None) -> pd.Series:
    """Runs per (group, recorded disposition); runs without a disposition are no stratum."""
    if group is None:
        sizes = runs["disposition"].value_counts(dropna=True)
        sizes = sizes[sizes > 0]
        index = pd.MultiIndex.from_arrays([["(all)"] * len(sizes), sizes.index.astype(object)])
        return pd.Series(sizes.to_numpy(), index=index)
    sizes = runs.groupby([runs[group], runs["disposition"]], observed=True, dropna=False).size()
    groups = sizes.index.get_level_values(0).astype(object)
    dispositions = sizes.index.get_level_values(1).astype(object)
    keep = pd.notna(dispositions) & (sizes.to_numpy() > 0)
    index = pd.MultiIndex.from_arrays([pd.Index(groups[keep]).fillna("(none)"), dispositions[keep]])
    return pd.Series(sizes.to_numpy()[keep], index=index).groupby(level=[0, 1]).sum()


def _accuracy_row(correct: int, wrong: int, unsure: int, z: float, population: float | None = None,
                  outside: int = 0) -> dict[str, Any]:
    judged = correct + wrong
    if outside or (population and judged > population):
        population = None  # not a sample of these runs: no finite population correction
    if population and 0 < judged < population:
        # Finite population correction: the Wilson interval at n / (1 - n/N).
        size = judged / (1 - judged / population)
        low, high = wilson_interval(correct / judged * size, size, z)
    elif population and judged == population > 0:
        low = high = correct / judged  # every run of the disposition judged
    else:
        low, high = wilson_interval(correct, judged, z)
    return {"reviewed": correct + wrong, "correct": correct, "unsure": unsure,
            "accuracy": correct / (correct + wrong) if correct + wrong else math.nan, "ci_low": low, "ci_high": high}


def _counts(votes: pd.DataFrame, keys: list[Any]) -> pd.DataFrame:
    """Votes per key (and recorded disposition): correct, wrong and unsure runs."""
    if not len(votes):
        return pd.DataFrame(columns=[*VERDICTS, "outside"], dtype="int64")
    verdict = votes["verdict"].to_numpy(dtype=object)
    flags = pd.DataFrame({v: (verdict == v) for v in VERDICTS}, index=votes.index)
    # Judged runs that are not in runs (see review_report): no finite population correction.
    outside = votes["_outside"].to_numpy(dtype=bool) if "_outside" in votes else np.zeros(len(votes), dtype=bool)
    flags["outside"] = outside & (flags["correct"] | flags["wrong"])
    groups = [k.to_numpy(dtype=object) if isinstance(k, pd.Series) else votes[k].fillna("(none)").to_numpy(dtype=object)
              for k in keys]
    return flags.groupby(groups if len(groups) > 1 else groups[0], sort=True).sum().astype("int64")


def _weighted_rows(votes: pd.DataFrame, runs: pd.DataFrame, group: str | None,
                   confidence: float) -> tuple[pd.DataFrame, int]:
    """The stratified accuracy per ``group`` of runs (or overall); strata: recorded dispositions.

    Also returns how many votes fall in no stratum of ``runs`` (no disposition, a disposition or a
    group without runs): they are left out, and the rows' counts are those that were used.
    """
    def key_of(frame: pd.DataFrame) -> pd.Series:
        if group is None:
            return pd.Series("(all)", index=frame.index, dtype=object)
        return frame[group].astype(object).fillna("(none)")

    population = _population(runs, group)
    counts = _counts(votes, [key_of(votes), "disposition"])
    used = counts.reindex(population.index, fill_value=0) if len(counts) else \
        pd.DataFrame(0, index=population.index, columns=[*VERDICTS, "outside"])
    left_out = int(counts[list(VERDICTS)].to_numpy().sum() - used[list(VERDICTS)].to_numpy().sum()) if len(counts) else 0
    rows = {}
    for key, sizes in population.groupby(level=0):
        sizes = sizes.droplevel(0)
        judged = used.xs(key, level=0).reindex(sizes.index, fill_value=0)
        estimate = stratified_accuracy(judged["correct"], judged["correct"] + judged["wrong"], sizes,
                                       confidence=confidence, outside=judged["outside"])
        unreviewed = estimate["unreviewed_share"]
        empty = int(((judged["correct"] + judged["wrong"] == 0) & (sizes > 0)).sum())
        note = ""
        if empty and unreviewed > 0 and empty < int((sizes > 0).sum()):
            note = (f"{empty} of its {int((sizes > 0).sum())} dispositions not reviewed ({unreviewed:.0%} of its "
                    "runs): the accuracy is over the reviewed ones, the interval widened to cover the rest")
        elif empty:
            note = "none of its dispositions reviewed"
        rows[key] = {"reviewed": int(judged["correct"].sum() + judged["wrong"].sum()),
                     "correct": int(judged["correct"].sum()), "unsure": int(judged["unsure"].sum()),
                     "accuracy": estimate["estimate"], "ci_low": estimate["ci_low"], "ci_high": estimate["ci_high"],
                     "population": int(sizes.sum()), "unreviewed_share": unreviewed, "note": note}
    columns = [*ACCURACY_COLUMNS, "population", "unreviewed_share", "note"]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns), left_out


def review_report(results: pd.DataFrame, runs: pd.DataFrame | None = None, *,
                  escalations: pd.DataFrame | None = None, confidence: float = 0.95,
                  strata: Sequence[str] = (), predictions: Any = None) -> dict[str, Any]:
    """Accuracy a QA lead can defend: weighted back to the runs, with intervals, and agreement.

    ``results``: the verdicts (``DispositionReview.results`` or ``ReviewStore.load()``). ``runs``:
    the runs the sample was drawn from (its population). Returns a dict:

    - ``accuracy``: per recorded disposition, ``reviewed`` (runs judged correct or wrong),
      ``correct``, ``unsure``, ``accuracy`` with its Wilson interval (``ci_low``, ``ci_high``;
      with ``runs``, finite population corrected: a disposition judged in full has no interval
      left) and ``population`` (runs with that disposition). The "(all)" row is the **stratified estimate**:
      each disposition's accuracy weighted by its share of ``runs`` (a sample that over-samples rare
      dispositions is weighted back), with a stratified Wilson interval at Kish's effective sample
      size and a finite population correction (see :func:`stratified_accuracy`);
      ``unreviewed_share`` is the share of runs in dispositions nobody judged, whose accuracy is
      unknown and widens the interval. Without ``runs`` the "(all)" row is the plain share of the
      sample with a Wilson interval, which is only right for a uniform sample: ``weighted`` is then
      False and a warning says so.
    - ``strata``: columns of ``runs`` the sample was stratified on besides the disposition
      (``review_sample(runs, by=["disposition", "outcome"])`` over-samples rare outcomes); the
      "(all)" row and ``by_agent`` then weight each disposition × outcome stratum by its share of
      the runs, so the over-sampling does not bias them. The per-disposition rows stay as they
      are (within a disposition, the reviewed runs are then not a uniform sample: read them
      with that in mind).
    - ``predictions``: a judge's verdict on the runs (a Series indexed by run id, or a column of
      ``runs``; True/False for "the recorded disposition is right", or a probability). The
      "(all)" row and ``by_agent`` are then **judge-assisted** (prediction-powered, see
      :mod:`conduit_notebook.ppi`; ``report["method"]`` names it): the judge's mean over every
      run corrected by the human-minus-judge difference on the reviewed runs, a useless judge
      costing almost nothing. ``report["human_only"]`` (and ``by_agent_human_only``) keep the
      human-only figures; ``report["judge"]``: ``n``, ``agreement``, ``sensitivity`` and
      ``specificity`` for wrong dispositions (Wilson intervals), ``kappa``, ``disagreements``.
    - ``by_agent``: the same stratified estimate per agent (strata: that agent's dispositions);
      ``note`` says when some of them have no judged run (the accuracy is then over the judged
      ones and the interval widened by ``unreviewed_share``).
    - What could not be used as given is said in ``note`` and a warning, never dropped silently:
      ``outside_runs``, verdicts on runs missing from ``runs`` (its population is not the one the
      sample came from): they count in their disposition's stratum (their agent from the verdict's
      ``agent_id``) **without** finite population correction, so no interval collapses; pass the
      runs the sample was drawn from. ``left_out``, verdicts in no stratum of ``runs`` (no
      disposition known, or one ``runs`` does not have): the rows count only the verdicts they use.
      ``contradictions``: "wrong" verdicts whose "should be" is the recorded disposition (taken
      from ``runs`` when the verdict lacks it); they count as ``unsure``, in neither accuracy nor
      the confusion table, so the two agree, until the reviewer gives a new verdict.
    - One run, one vote: when several reviewers judged a run, their majority counts (each
      reviewer's latest verdict; a tie is ``unsure``). ``votes`` has one row per run.
    - ``confusion``: recorded disposition (rows) against reviewed disposition (columns), per run.
    - ``kappa`` (Cohen's, on the reviewed dispositions of the two reviewers with most runs in
      common), ``kappa_ci`` (percentile bootstrap 95% interval), ``kappa_runs``, ``kappa_pair``.
    - ``disagreements``: every verdict on runs whose reviewers disagree, to discuss.
    - ``escalations`` (when ``escalations`` from :func:`fetch_escalations` is given): the operator's
      outcome of each judged escalated run against the reviewers' verdict.
    """
    if predictions is not None and runs is None:
        raise ValueError("predictions need runs= (the runs the sample was drawn from, which the judge judged)")
    if not isinstance(results, pd.DataFrame):
        raise TypeError(f"results must be a DataFrame of verdicts (DispositionReview.results), got {type(results).__name__}")
    missing = [c for c in ("agent_run_id", "disposition", "verdict", "reviewed_disposition") if c not in results]
    if missing:
        raise ValueError(f"results needs the columns {', '.join(missing)}")
    if runs is not None and (not isinstance(runs, pd.DataFrame) or not {"id", "disposition"} <= set(runs.columns)):
        raise ValueError("runs must be the runs frame the sample was drawn from (with 'id' and 'disposition' columns)")
    z = z_value(confidence)
    frame, contradictions = _recorded(results, runs)
    notes: list[str] = []
    if len(contradictions):
        named = ", ".join(contradictions["agent_run_id"].astype(str).unique()[:5])
        more = contradictions["agent_run_id"].nunique() - 5
        notes.append(f"{len(contradictions)} verdict(s) contradict themselves ('wrong', but the disposition it "
                     f"should have had is the recorded one): {named}{f' and {more} more' if more > 0 else ''}. "
                     "They count as unsure (in neither accuracy nor the confusion table) until the reviewer "
                     "gives a new verdict; see report['contradictions'].")
    votes = run_votes(frame) if len(frame) else frame.assign(reviewers=pd.Series(dtype="int64"))
    weighted = runs is not None
    outside = 0
    if weighted and len(votes):
        in_runs = votes["agent_run_id"].astype(object).isin(_by_id(runs, votes["agent_run_id"], "id").index)
        judged_vote = votes["verdict"].isin(["correct", "wrong", "unsure"])
        votes["_outside"] = (~in_runs).to_numpy()
        outside = int((~in_runs & judged_vote).sum())
        if outside:
            notes.append(f"{outside} verdict(s) are on runs not in runs (e.g. runs of a shorter window than the "
                         "sample was drawn from): they count in their disposition's stratum without finite "
                         "population correction. Pass the runs the sample was drawn from.")
    counts = _counts(votes, ["disposition"]) if len(votes) else pd.DataFrame(columns=[*VERDICTS, "outside"])
    left_out = 0
    if weighted:
        population = _population(runs, None).droplevel(0)
        if len(counts):
            known = counts.index.isin(population.index)
            left_out = int(counts.loc[~known, list(VERDICTS)].to_numpy().sum())
            counts = counts[known]
        if left_out:
            notes.append(f"{left_out} verdict(s) are left out: their run is not in runs and they carry no "
                         "disposition, or their disposition has no runs in runs.")
    rows = {name: _accuracy_row(int(c["correct"]), int(c["wrong"]), int(c["unsure"]), z,
                                population.get(name) if weighted else None, int(c["outside"]))
            for name, c in counts.iterrows()}
    accuracy = pd.DataFrame.from_dict(rows, orient="index", columns=ACCURACY_COLUMNS)
    if runs is not None:  # weighted
        accuracy["population"] = population.reindex(accuracy.index).fillna(0).astype("int64")
        accuracy["unreviewed_share"] = np.nan
        strata_votes, strata_runs = _crossed(votes, runs, strata)
        overall, _ = _weighted_rows(strata_votes, strata_runs, None, confidence)
        overall = overall.iloc[0]
        by = "agent_name" if "agent_name" in runs and runs["agent_name"].notna().any() else "agent_id"
        agent = votes["agent_run_id"].astype(object).map(_by_id(runs, votes["agent_run_id"], by))
        if "agent_id" in votes and "agent_id" in runs:
            # A run missing from runs keeps the agent its verdict names.
            named = votes["agent_id"].astype(object)
            if by != "agent_id":
                names = runs[["agent_id", by]].drop_duplicates("agent_id")
                named = named.map(pd.Series(names[by].astype(object).to_numpy(),
                                            index=names["agent_id"].astype(object).to_numpy()))
            agent = agent.where(agent.notna(), named)
        votes[by] = agent
        strata_votes, strata_runs = _crossed(votes, runs, strata)
        by_agent, agent_left_out = _weighted_rows(strata_votes, strata_runs, by, confidence)
        by_agent.index.name = by
        if agent_left_out > left_out:
            notes.append(f"{agent_left_out} verdict(s) are in no agent's runs and left out of by_agent.")
    else:
        total = counts.sum() if len(counts) else pd.Series(0, index=list(VERDICTS))
        overall = pd.Series(_accuracy_row(int(total["correct"]), int(total["wrong"]), int(total["unsure"]), z))
        by_agent = pd.DataFrame()
        unweighted = ("The (all) row is unweighted (the plain share of the sample): pass runs= (the runs the "
                      "sample was drawn from) to weight each disposition by its share of the runs.")
        notes.insert(0, unweighted)
        warnings.warn(unweighted, UserWarning, stacklevel=2)
    for text in notes:
        if not text.startswith("The (all) row is unweighted"):
            warnings.warn(text, UserWarning, stacklevel=2)
    accuracy.loc["(all)"] = overall.reindex(accuracy.columns)
    accuracy = accuracy.astype({c: "int64" for c in ("reviewed", "correct", "unsure", *(["population"] if weighted else []))})
    accuracy.index.name = "disposition"
    judged = votes[votes["verdict"].isin(["correct", "wrong"])] if len(votes) else votes
    if weighted and len(judged):
        judged = judged[judged["disposition"].isin(population.index)]  # the runs the accuracy counts
    confusion = pd.crosstab(judged["disposition"].fillna("(none)"), judged["reviewed_disposition"].fillna("(none)"),
                            rownames=["recorded"], colnames=["reviewed"]) if len(judged) else pd.DataFrame()
    votes = votes.drop(columns=["_outside"], errors="ignore")
    report = {"accuracy": accuracy, "by_agent": by_agent, "confusion": confusion, "votes": votes,
              "weighted": weighted, "method": METHOD, "note": " ".join(notes), "outside_runs": outside,
              "left_out": left_out, "contradictions": contradictions}
    report.update(_agreement(frame, confidence))
    if predictions is not None:
        _with_judge(report, votes, runs, predictions, strata, confidence)
    if escalations is not None:
        from .escalations import escalation_verdicts

        report["escalations"] = escalation_verdicts(votes, escalations)
    return report


def judge_agreement(votes: pd.DataFrame, judge: pd.Series, *, confidence: float = 0.95,
                    show: int = 10) -> dict[str, Any]:
    """How far the judge agrees with people on the reviewed runs (correct or wrong; unsure left
    out): ``n``, ``agreement``, ``sensitivity`` (wrong dispositions the judge calls wrong) and
    ``specificity`` (right ones it calls right), each with a Wilson interval, Cohen's ``kappa``,
    and ``disagreements``: the runs where judge and people differ most, to read."""
    judged = votes[votes["verdict"].isin(["correct", "wrong"])]
    f = judge.reindex(judged["agent_run_id"].astype(object).to_numpy()).to_numpy(dtype=float)
    have = ~np.isnan(f)
    judged, f = judged[have], f[have]
    human = (judged["verdict"].to_numpy(dtype=object) == "correct")
    says_right = f >= 0.5
    n = len(judged)
    agree = int((human == says_right).sum())
    wrong, right = ~human, human
    z = z_value(confidence)

    def share(k: int, total: int) -> dict[str, float]:
        low, high = wilson_interval(k, total, z)
        return {"value": k / total if total else math.nan, "ci_low": low, "ci_high": high, "of": total}

    kappa = (cohen_kappa(pd.Series(human), pd.Series(says_right)) if n and len(set(human)) + len(set(says_right)) > 2
             else math.nan)
    gap = np.abs(human.astype(float) - f)
    order = np.argsort(-gap, kind="stable")[:show]
    disagreements = pd.DataFrame({
        "agent_run_id": judged["agent_run_id"].to_numpy()[order],
        "disposition": judged["disposition"].to_numpy()[order] if "disposition" in judged else None,
        "human": np.where(human[order], "correct", "wrong"), "judge": f[order], "gap": gap[order]})
    disagreements = disagreements[disagreements["gap"] >= 0.5].reset_index(drop=True)
    return {"n": n, "agreement": share(agree, n), "sensitivity": share(int((~says_right & wrong).sum()), int(wrong.sum())),
            "specificity": share(int((says_right & right).sum()), int(right.sum())), "kappa": kappa,
            "disagreements": disagreements}


def _with_judge(report: dict[str, Any], votes: pd.DataFrame, runs: pd.DataFrame, predictions: Any,
                strata: Sequence[str], confidence: float) -> None:
    """Replace the "(all)" row and by_agent with the judge-assisted estimates (ppi.py), keep the
    human-only ones beside them, and add how far the judge agrees with people."""
    judge = predictions_for(runs, predictions)
    crossed_votes, crossed_runs = _crossed(votes, runs, strata)
    stratum = pd.Series(crossed_runs["disposition"].astype(object).to_numpy(),
                        index=crossed_runs["id"].astype(object).to_numpy()).dropna()
    judged = crossed_votes[crossed_votes["verdict"].isin(["correct", "wrong"])
                           & crossed_votes["agent_run_id"].astype(object).isin(stratum.index)]

    def estimate(members: pd.Index) -> dict[str, Any]:
        mine = judged[judged["agent_run_id"].astype(object).isin(members)]
        return ppi_accuracy(stratum[members], mine["agent_run_id"].astype(object),
                            (mine["verdict"] == "correct").astype(float), judge, confidence=confidence)

    def narrower(row: pd.Series, part: dict[str, Any]) -> bool:
        # A judge that does not narrow the interval (useless, constant, or a stratum with too few
        # reviews for it to pay) is not used: the human-only figure stands.
        return part["lambda"] > 0 and part["ci_high"] - part["ci_low"] < row["ci_high"] - row["ci_low"]

    accuracy = report["accuracy"]
    report["human_only"] = accuracy.loc["(all)"].copy()
    overall = estimate(stratum.index)
    overall["used"] = narrower(report["human_only"], overall)
    if overall["used"]:
        accuracy.loc["(all)", ["accuracy", "ci_low", "ci_high"]] = [overall["estimate"], overall["ci_low"],
                                                                   overall["ci_high"]]
    report["judge_assisted"] = overall
    by_agent = report["by_agent"]
    if isinstance(by_agent, pd.DataFrame) and len(by_agent):
        report["by_agent_human_only"] = by_agent.copy()
        column = by_agent.index.name
        labels = crossed_runs[column].astype(object).to_numpy() if column in crossed_runs else None
        if labels is not None:
            ids = crossed_runs["id"].astype(object).to_numpy()
            for agent in by_agent.index:
                members = pd.Index(ids[labels == agent]).intersection(stratum.index)
                if len(members):
                    part = estimate(members)
                    if narrower(by_agent.loc[agent], part):
                        by_agent.loc[agent, ["accuracy", "ci_low", "ci_high"]] = [part["estimate"], part["ci_low"],
                                                                                 part["ci_high"]]
    report["method"] = (PPI_METHOD if overall["used"] else
                        report["method"] + "; the judge was not used: it did not narrow the interval")
    report["judge"] = judge_agreement(votes, judge, confidence=confidence)
    covered = judge.reindex(stratum.index).notna().mean() if len(stratum) else 0.0
    report["judge"]["runs_with_prediction"] = float(covered)


def _crossed(votes: pd.DataFrame, runs: pd.DataFrame, strata: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Votes and runs whose ``disposition`` is the stratum crossed with ``strata`` (columns of
    runs, e.g. ``outcome``): the weights then follow the sample's design when it was drawn with
    ``review_sample(runs, by=["disposition", *strata])``."""
    if not strata:
        return votes, runs
    strata = [strata] if isinstance(strata, str) else list(strata)
    missing = [c for c in strata if c not in runs.columns]
    if missing:
        raise ValueError(f"strata must be columns of runs (those the sample was drawn on, besides the "
                         f"disposition); runs has no {', '.join(missing)}")
    label = runs["disposition"].astype(object)
    for column in strata:
        label = label + " | " + runs[column].astype(object).astype(str)
    runs = runs.assign(disposition=label)
    extra = votes["agent_run_id"].astype(object).map(_by_id(runs, votes["agent_run_id"], "disposition"))
    votes = votes.assign(disposition=extra)
    return votes, runs


def _agreement(frame: pd.DataFrame, confidence: float) -> dict[str, Any]:
    out: dict[str, Any] = {"kappa": math.nan, "kappa_ci": (math.nan, math.nan), "kappa_runs": 0, "kappa_pair": None,
                           "disagreements": pd.DataFrame(columns=DISAGREEMENT_COLUMNS)}
    if "reviewer" not in frame or frame["reviewer"].nunique() < 2:
        return out
    latest = frame.drop_duplicates(["agent_run_id", "reviewer"], keep="last")
    judged = latest[latest["verdict"].isin(["correct", "wrong"])]
    labels = judged.pivot_table(index="agent_run_id", columns="reviewer", values="reviewed_disposition",
                                aggfunc="last")
    reviewers = list(labels.columns)
    # The pair of reviewers who judged the most runs in common.
    best = max(((a, b) for i, a in enumerate(reviewers) for b in reviewers[i + 1:]),
               key=lambda ab: labels[list(ab)].dropna().shape[0], default=None)
    if best is not None:
        both = labels[list(best)].dropna()
        out.update(kappa_runs=len(both), kappa_pair=best, kappa=cohen_kappa(both[best[0]], both[best[1]]),
                   kappa_ci=kappa_interval(both[best[0]], both[best[1]], confidence=confidence))
    said = latest["verdict"].astype(str) + "|" + latest["reviewed_disposition"].astype(str)
    several = latest.groupby("agent_run_id")["reviewer"].transform("size") > 1
    differ = said.groupby(latest["agent_run_id"]).transform("nunique") > 1
    rows = latest[several & differ]
    out["disagreements"] = (rows.reindex(columns=DISAGREEMENT_COLUMNS)
                            .sort_values(["agent_run_id", "reviewer"]).reset_index(drop=True))
    return out
