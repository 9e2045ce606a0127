"""Categories a trace sample missed, and what each estimated row rests on: rows of 0 with an
upper bound for a category known to exist but absent from the sample (:func:`unseen_rows`), and
the note a table carries on its flags and on how rare a category could be and still be missed
(:func:`flags_note`). Shared by ``tool_stats``, ``tool_paths`` and ``tool_transitions``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .design import TraceSample

__all__ = ["flags_note", "unseen_rows", "with_unseen_rows"]


def unseen_rows(index: pd.Index, design: TraceSample, *, zero: Sequence[str] = (), share: Sequence[str] = (),
                count: Sequence[str] = (), unbounded: Sequence[str] = ()) -> pd.DataFrame:
    """One row per category of ``index`` (known to exist: in the calls given, the cache, a previous
    fetch, but taken by no sampled run): the ``zero`` columns 0 (the estimate and its low end),
    the ``share`` columns the largest share of runs it could still have, the **rule of three**
    generalised at Kish's effective n (:meth:`TraceSample.unseen_bound`, 3 / n at 95%), the
    ``count`` columns that share times the runs the sample stands for, the ``unbounded`` columns
    NaN (what the sample cannot bound: how often a run that takes it repeats it), and
    ``traced_runs`` 0."""
    bound = design.unseen_bound()
    columns: dict[str, object] = {c: 0.0 for c in zero}
    columns.update({c: bound for c in share})
    columns.update({c: bound * design.population for c in count})
    columns.update({c: np.nan for c in unbounded})
    columns["traced_runs"] = 0
    return pd.DataFrame(columns, index=index).astype({"traced_runs": np.int64})


def with_unseen_rows(table: pd.DataFrame, known: pd.Index, design: TraceSample, **columns: Sequence[str]
                     ) -> pd.DataFrame:
    """``table`` (indexed by category) with an :func:`unseen_rows` row for each category of
    ``known`` not in its index (``columns``: the ``zero``, ``share``, ``count`` and
    ``unbounded`` column names)."""
    unseen = pd.Index(known.astype(object)).difference(table.index, sort=False)
    if not len(unseen):
        return table
    extra = unseen_rows(pd.Index(unseen, name=table.index.name), design, **columns)
    return pd.concat([table, extra]).astype({"traced_runs": np.int64})


def flags_note(traced_runs: np.ndarray, flags: np.ndarray, design: TraceSample, what: str = "tool") -> str:
    """What the ``flag`` column of an estimated table means for the reader, and what to do: how
    rare a ``what`` (tool, path, transition) could be and still be missed by this sample (the
    rule of three at Kish's n), how many known ones it missed (rows of 0 with that bound), how
    many rows are flagged (few traced runs, or concentrated in few runs) and how to fetch more."""
    traced_runs, flags = np.asarray(traced_runs), np.asarray(flags, dtype=object)
    unseen = int((traced_runs == 0).sum())
    flagged = int((flags.astype(bool) & (traced_runs > 0)).sum())
    verb = "used by" if what == "tool" else "taken by"
    note = (f"A {what} {verb} {design.unseen_bound():.1%} of runs or fewer can be missed by this sample (rule of "
            f"three at Kish's n = {design.kish_n:,.0f} of {design.traced:,} traced runs)")
    if unseen:
        note += f"; {unseen} known {what}(s) not seen in it are rows of 0 with that upper bound"
    if flagged:
        note += (f". {flagged} row(s) flagged (few traced runs, or calls concentrated in few runs): their "
                 "intervals may not hold; fetch more traces of this slice first "
                 "(frames.fetch_traces(slice.loc[slice['trace_weight'].isna(), 'id']))")
    return note + "."
