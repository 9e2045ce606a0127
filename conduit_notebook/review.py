"""Disposition reviews: the verdict store and the report, as plain functions.

A reviewer reads a run and says whether its disposition was right: ``correct``, ``wrong`` (with
the disposition it should have had) or ``unsure``. Each verdict is appended to a CSV file the
moment it is given (flushed and synced), so nothing is lost on a kernel restart, and a review
resumes where it stopped. :func:`review_report` turns the verdicts into accuracy per disposition
(with Wilson 95% intervals), a confusion table and the agreement between reviewers.
"""

from __future__ import annotations

import csv
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["REVIEW_COLUMNS", "VERDICTS", "ReviewStore", "cohen_kappa", "review_report", "wilson_interval"]

VERDICTS = ("correct", "wrong", "unsure")
REVIEW_COLUMNS = ["agent_run_id", "agent_id", "disposition", "verdict", "reviewed_disposition",
                  "note", "reviewer", "reviewed_at"]


class ReviewStore:
    """Verdicts in a CSV file, one row each, appended as they are given.

    The latest verdict of a reviewer on a run wins (a reviewer may change their mind).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        if self.path.is_dir():
            raise ValueError(f"store must be a CSV file path, not a directory: {self.path}")

    def add(self, *, agent_run_id: str, agent_id: str | None, disposition: str | None, verdict: str,
            reviewed_disposition: str | None = None, note: str = "", reviewer: str = "") -> dict[str, Any]:
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
        if verdict == "wrong" and not reviewed_disposition:
            raise ValueError("a 'wrong' verdict needs reviewed_disposition: the disposition the run should have had")
        if verdict == "correct":
            reviewed_disposition = disposition
        row = {
            "agent_run_id": agent_run_id, "agent_id": agent_id or "", "disposition": disposition or "",
            "verdict": verdict, "reviewed_disposition": reviewed_disposition or "", "note": note or "",
            "reviewer": reviewer or "", "reviewed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        new = not self.path.exists() or self.path.stat().st_size == 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=REVIEW_COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow(row)
            handle.flush()
            os.fsync(handle.fileno())  # the verdict survives a kernel (or machine) restart
        return row

    def load(self, *, latest: bool = True) -> pd.DataFrame:
        """Every verdict (or, with ``latest``, each reviewer's last word on each run)."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return pd.DataFrame({c: pd.Series(dtype="string") for c in REVIEW_COLUMNS})
        frame = pd.read_csv(self.path, dtype=str, keep_default_na=False)
        for column in REVIEW_COLUMNS:
            if column not in frame:
                frame[column] = ""
        frame = frame[REVIEW_COLUMNS].astype("string")
        frame["reviewed_at"] = pd.to_datetime(frame["reviewed_at"], utc=True, errors="coerce")
        if latest:
            frame = frame.drop_duplicates(["agent_run_id", "reviewer"], keep="last").reset_index(drop=True)
        return frame

    def reviewed(self, reviewer: str | None = None) -> set[str]:
        frame = self.load()
        if reviewer is not None:
            frame = frame[frame["reviewer"] == (reviewer or "")]
        return set(frame["agent_run_id"])


def wilson_interval(successes: int, total: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval for a proportion (95% by default); (nan, nan) when total is 0."""
    if total <= 0:
        return (math.nan, math.nan)
    p = successes / total
    denominator = 1 + z**2 / total
    centre = (p + z**2 / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z**2 / (4 * total**2)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def cohen_kappa(first: pd.Series, second: pd.Series) -> float:
    """Cohen's kappa between two raters' labels of the same items (nan if undefined)."""
    pairs = pd.DataFrame({"a": first.to_numpy(), "b": second.to_numpy()}).dropna()
    n = len(pairs)
    if n == 0:
        return math.nan
    observed = float((pairs["a"] == pairs["b"]).mean())
    pa = pairs["a"].value_counts(normalize=True)
    pb = pairs["b"].value_counts(normalize=True)
    expected = float(sum(pa.get(k, 0.0) * pb.get(k, 0.0) for k in set(pa.index) | set(pb.index)))
    if expected >= 1.0:
        return 1.0 if observed == 1.0 else math.nan
    return (observed - expected) / (1 - expected)


def review_report(results: pd.DataFrame, runs: pd.DataFrame | None = None) -> dict[str, Any]:
    """Accuracy per disposition, a confusion table and the agreement between reviewers.

    Returns a dict of DataFrames/values:

    - ``accuracy``: per recorded disposition, ``reviewed`` (correct + wrong; unsure runs are
      left out), ``correct``, ``unsure``, ``accuracy`` and its Wilson 95% interval
      (``ci_low``, ``ci_high``), plus an "(all)" row.
    - ``confusion``: recorded disposition (rows) against reviewed disposition (columns).
    - ``kappa``: Cohen's kappa between reviewers on runs two reviewers judged (their reviewed
      dispositions), with ``kappa_runs``, the number of such runs; NaN when there are none.

    ``runs`` (optional) fills in a recorded disposition missing from the verdicts.
    """
    if not isinstance(results, pd.DataFrame):
        raise TypeError(f"results must be a DataFrame of verdicts (DispositionReview.results), got {type(results).__name__}")
    missing = [c for c in ("agent_run_id", "disposition", "verdict", "reviewed_disposition") if c not in results]
    if missing:
        raise ValueError(f"results needs the columns {', '.join(missing)}")
    frame = results.copy()
    for column in ("disposition", "reviewed_disposition", "verdict", "reviewer"):
        if column in frame:
            frame[column] = frame[column].astype(object).where(frame[column].notna() & (frame[column] != ""), None)
    if runs is not None and "id" in runs and "disposition" in runs:
        recorded = dict(zip(runs["id"].astype(object), runs["disposition"].astype(object)))
        frame["disposition"] = frame["disposition"].fillna(frame["agent_run_id"].map(recorded))
    rows = []
    groups = list(frame.groupby(frame["disposition"].fillna("(none)"), sort=True))
    for name, group in groups + [("(all)", frame)]:
        correct = int((group["verdict"] == "correct").sum())
        wrong = int((group["verdict"] == "wrong").sum())
        unsure = int((group["verdict"] == "unsure").sum())
        low, high = wilson_interval(correct, correct + wrong)
        rows.append({"disposition": name, "reviewed": correct + wrong, "correct": correct, "unsure": unsure,
                     "accuracy": correct / (correct + wrong) if correct + wrong else math.nan,
                     "ci_low": low, "ci_high": high})
    accuracy = pd.DataFrame(rows).set_index("disposition")
    judged = frame[frame["verdict"].isin(["correct", "wrong"])]
    confusion = pd.crosstab(judged["disposition"].fillna("(none)"), judged["reviewed_disposition"].fillna("(none)"),
                            rownames=["recorded"], colnames=["reviewed"])
    kappa, kappa_runs = math.nan, 0
    if "reviewer" in frame and frame["reviewer"].nunique() >= 2:
        labels = judged.pivot_table(index="agent_run_id", columns="reviewer", values="reviewed_disposition",
                                    aggfunc="last")
        reviewers = list(labels.columns)
        # The pair of reviewers who judged the most runs in common.
        best = max(((a, b) for i, a in enumerate(reviewers) for b in reviewers[i + 1:]),
                   key=lambda ab: labels[list(ab)].dropna().shape[0], default=None)
        if best is not None:
            both = labels[list(best)].dropna()
            kappa_runs = len(both)
            kappa = cohen_kappa(both[best[0]], both[best[1]])
    return {"accuracy": accuracy, "confusion": confusion, "kappa": kappa, "kappa_runs": kappa_runs}
