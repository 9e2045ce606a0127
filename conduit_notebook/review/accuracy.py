"""From verdicts to accuracy: one vote per run, the recorded disposition of each verdict, and
the stratified accuracy per group of runs (weighted back to the runs). The building blocks of
:func:`conduit_notebook.review.review_report`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import pandas as pd

from ..stats import stratified_accuracy, wilson_interval
from .store import VERDICTS

__all__ = ["ACCURACY_COLUMNS", "DISAGREEMENT_COLUMNS", "METHOD", "accuracy_row", "crossed_strata",
           "recorded_verdicts", "run_votes", "stratum_sizes", "values_by_run", "verdict_counts",
           "weighted_accuracy"]

ACCURACY_COLUMNS = ["reviewed", "correct", "unsure", "accuracy", "ci_low", "ci_high"]
DISAGREEMENT_COLUMNS = ["agent_run_id", "disposition", "reviewer", "verdict", "reviewed_disposition", "note"]
METHOD = ("stratified estimate (dispositions weighted by their share of the runs); stratified Wilson "
          "interval at Kish's effective sample size, with finite population correction")



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
    chosen = np.where((out["verdict"] == "correct").to_numpy(), out["disposition"].to_numpy(dtype=object),
                      np.array(None, dtype=object))
    out["reviewed_disposition"] = np.where((out["verdict"] == "wrong").to_numpy(),
                                           out.index.map(mode.to_dict()).to_numpy(), chosen)
    out["reviewers"] = groups.size()
    return out.drop(columns=["_correct", "_wrong"]).reset_index()



def recorded_verdicts(frame: pd.DataFrame, runs: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The verdicts with their recorded disposition (from ``runs`` where a verdict lacks it), and
    the self-contradicting ones ('wrong' with the recorded disposition as the right one), which are
    turned into ``unsure``."""
    frame = frame.copy()
    for column in ("disposition", "reviewed_disposition", "verdict", "reviewer", "agent_id", "note"):
        if column in frame:
            values = frame[column].astype(object)
            frame[column] = values.where(values.notna() & (values != ""), None)
    if runs is not None and "id" in runs and "disposition" in runs:
        recorded = values_by_run(runs, frame["agent_run_id"], "disposition")
        frame["disposition"] = frame["disposition"].fillna(frame["agent_run_id"].astype(object).map(recorded))
    same = (frame["verdict"].astype(object) == "wrong") & frame["disposition"].notna() \
        & frame["reviewed_disposition"].notna() \
        & (frame["disposition"].astype(str).str.strip().str.casefold()
           == frame["reviewed_disposition"].astype(str).str.strip().str.casefold())
    contradictions = frame.loc[same].reindex(columns=DISAGREEMENT_COLUMNS).reset_index(drop=True)
    if same.any():
        frame.loc[same, "verdict"] = "unsure"
    return frame, contradictions


def values_by_run(runs: pd.DataFrame, ids: pd.Series, column: str) -> pd.Series:
    """``column`` of the runs whose id is in ``ids``, indexed by id (only those: runs may be large)."""
    wanted = runs[runs["id"].isin(set(ids.dropna().astype(str)))]
    values = pd.Series(wanted[column].astype(object).to_numpy(), index=wanted["id"].astype(object).to_numpy())
    return values[~values.index.duplicated()]


def stratum_sizes(runs: pd.DataFrame, group: str | None) -> pd.Series:
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


def accuracy_row(correct: int, wrong: int, unsure: int, z: float, population: float | None = None,
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


def verdict_counts(votes: pd.DataFrame, keys: list[Any]) -> pd.DataFrame:
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


def weighted_accuracy(votes: pd.DataFrame, runs: pd.DataFrame, group: str | None,
                   confidence: float) -> tuple[pd.DataFrame, int]:
    """The stratified accuracy per ``group`` of runs (or overall); strata: recorded dispositions.

    Also returns how many votes fall in no stratum of ``runs`` (no disposition, a disposition or a
    group without runs): they are left out, and the rows' counts are those that were used.
    """
    def key_of(frame: pd.DataFrame) -> pd.Series:
        if group is None:
            return pd.Series("(all)", index=frame.index, dtype=object)
        return frame[group].astype(object).fillna("(none)")

    population = stratum_sizes(runs, group)
    counts = verdict_counts(votes, [key_of(votes), "disposition"])
    used = counts.reindex(population.index, fill_value=0) if len(counts) else \
        pd.DataFrame(0, index=population.index, columns=[*VERDICTS, "outside"])
    left_out = int(counts[list(VERDICTS)].to_numpy().sum() - used[list(VERDICTS)].to_numpy().sum()) if len(counts) else 0
    # A group's disposition nobody reviewed in that group takes the disposition's accuracy over
    # every group (its reviews in other agents): leaving it out biased an agent's accuracy
    # towards its reviewed dispositions (-0.20 at 20 reviews where its common one went unreviewed).
    totals = used.groupby(level=1)[["correct", "wrong"]].sum()
    borrowed = (totals["correct"] / (totals["correct"] + totals["wrong"])).where(totals.sum(axis=1) > 0)
    rows = {key: _group_row(cast(pd.DataFrame, used.xs(key, level=0)).reindex(sizes.droplevel(0).index, fill_value=0),
                            sizes.droplevel(0), borrowed if group is not None else None, confidence)
            for key, sizes in population.groupby(level=0)}
    columns = [*ACCURACY_COLUMNS, "population", "unreviewed_share", "note"]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns), left_out



def crossed_strata(votes: pd.DataFrame, runs: pd.DataFrame, strata: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
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
    extra = votes["agent_run_id"].astype(object).map(values_by_run(runs, votes["agent_run_id"], "disposition"))
    votes = votes.assign(disposition=extra)
    return votes, runs


def _group_row(judged: pd.DataFrame, sizes: pd.Series, borrowed: pd.Series | None, confidence: float) -> dict[str, Any]:
    """One group's stratified accuracy; its unreviewed dispositions at their ``borrowed`` accuracy
    (over every group) where known. The interval stays the one widened to cover any accuracy of
    the unreviewed runs, so it holds whatever they are."""
    n = judged["correct"] + judged["wrong"]
    estimate = stratified_accuracy(judged["correct"], n, sizes, confidence=confidence, outside=judged["outside"])
    unreviewed = estimate["unreviewed_share"]
    empty_strata = (n == 0) & (sizes > 0)
    empty, strata = int(empty_strata.sum()), int((sizes > 0).sum())
    value, note = estimate["estimate"], ""
    if empty and unreviewed > 0 and empty < strata:
        weight = sizes[empty_strata] / sizes.sum()
        known = borrowed.reindex(weight.index) if borrowed is not None else pd.Series(np.nan, index=weight.index)
        have = known.notna()
        if have.any():
            # The reviewed share keeps its estimate; the borrowed strata add theirs.
            covered = 1 - unreviewed + float(weight[have].sum())
            value = ((1 - unreviewed) * value + float((weight[have] * known[have]).sum())) / covered
        note = (f"{empty} of its {strata} dispositions not reviewed for it ({unreviewed:.0%} of its runs): "
                + (f"{int(have.sum())} at the disposition's accuracy over all agents, " if have.any() else "")
                + ("the rest left out of the accuracy, " if (~have).any() else "")
                + "the interval widened to cover any accuracy of those runs")
    elif empty:
        note = "none of its dispositions reviewed"
    return {"reviewed": int(n.sum()), "correct": int(judged["correct"].sum()), "unsure": int(judged["unsure"].sum()),
            "accuracy": value, "ci_low": estimate["ci_low"], "ci_high": estimate["ci_high"],
            "population": int(sizes.sum()), "unreviewed_share": unreviewed, "note": note}
