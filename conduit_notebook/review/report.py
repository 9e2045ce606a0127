"""The review report: accuracy weighted back to the runs, with intervals, the confusion table,
the agreement between reviewers, and a judge's agreement with them."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..ppi import METHOD as PPI_METHOD
from ..ppi import ppi_accuracy, predictions_for
from ..stats import cohen_kappa, kappa_interval, wilson_interval, z_value
from .accuracy import (
    ACCURACY_COLUMNS,
    DISAGREEMENT_COLUMNS,
    METHOD,
    accuracy_row,
    crossed_strata,
    recorded_verdicts,
    run_votes,
    stratum_sizes,
    values_by_run,
    verdict_counts,
    weighted_accuracy,
)
from .store import VERDICTS

__all__ = ["judge_agreement", "review_report"]


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
      ``note`` says when some of them have no judged run of that agent: such a disposition
      counts at its accuracy over all agents (over the judged ones alone, an agent whose common
      disposition went unreviewed got its rare ones' accuracy: -0.79 in
      tests/test_review_stats.py, now under 0.15), and the interval is widened by
      ``unreviewed_share`` to cover any accuracy of those runs.
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
    _check_report_input(results, runs, predictions)
    z = z_value(confidence)
    frame, contradictions = recorded_verdicts(results, runs)
    notes = _contradiction_notes(contradictions)
    votes = run_votes(frame) if len(frame) else frame.assign(reviewers=pd.Series(dtype="int64"))
    weighted = runs is not None
    outside = _mark_outside(votes, runs, notes) if runs is not None else 0
    counts = verdict_counts(votes, ["disposition"]) if len(votes) else pd.DataFrame(columns=[*VERDICTS, "outside"])
    left_out = 0
    population = pd.Series(dtype="int64")
    if runs is not None:
        population = stratum_sizes(runs, None).droplevel(0)
        if len(counts):
            known = counts.index.isin(population.index)
            left_out = int(counts.loc[~known, list(VERDICTS)].to_numpy().sum())
            counts = counts[known]
        if left_out:
            notes.append(f"{left_out} verdict(s) are left out: their run is not in runs and they carry no "
                         "disposition, or their disposition has no runs in runs.")
    rows = {name: accuracy_row(int(c["correct"]), int(c["wrong"]), int(c["unsure"]), z,
                               population.get(name) if weighted else None, int(c["outside"]))
            for name, c in counts.iterrows()}
    accuracy = pd.DataFrame.from_dict(rows, orient="index", columns=ACCURACY_COLUMNS)
    if runs is not None:
        accuracy["population"] = population.reindex(accuracy.index).fillna(0).astype("int64")
        accuracy["unreviewed_share"] = np.nan
        overall, by_agent = _weighted_overall_and_agents(votes, runs, strata, confidence, left_out, notes)
    else:
        overall, by_agent = _unweighted_overall(counts, z, notes)
    for text in notes:
        if not text.startswith("The (all) row is unweighted"):
            warnings.warn(text, UserWarning, stacklevel=2)
    accuracy.loc["(all)"] = overall.reindex(accuracy.columns)
    accuracy = accuracy.astype({c: "int64" for c in ("reviewed", "correct", "unsure", *(["population"] if weighted else []))})
    accuracy.index.name = "disposition"
    confusion = _confusion(votes, population if weighted else None)
    votes = votes.drop(columns=["_outside"], errors="ignore")
    report = {"accuracy": accuracy, "by_agent": by_agent, "confusion": confusion, "votes": votes,
              "weighted": weighted, "method": METHOD, "note": " ".join(notes), "outside_runs": outside,
              "left_out": left_out, "contradictions": contradictions}
    report.update(_agreement(frame, confidence))
    if predictions is not None:
        assert runs is not None  # checked above: predictions need runs
        _with_judge(report, votes, runs, predictions, strata, confidence)
    if escalations is not None:
        from ..escalations import escalation_verdicts

        report["escalations"] = escalation_verdicts(votes, escalations)
    return report


def _check_report_input(results: Any, runs: Any, predictions: Any) -> None:
    if predictions is not None and runs is None:
        raise ValueError("predictions need runs= (the runs the sample was drawn from, which the judge judged)")
    if not isinstance(results, pd.DataFrame):
        raise TypeError(f"results must be a DataFrame of verdicts (DispositionReview.results), got {type(results).__name__}")
    missing = [c for c in ("agent_run_id", "disposition", "verdict", "reviewed_disposition") if c not in results]
    if missing:
        raise ValueError(f"results needs the columns {', '.join(missing)}")
    if runs is not None and (not isinstance(runs, pd.DataFrame) or not {"id", "disposition"} <= set(runs.columns)):
        raise ValueError("runs must be the runs frame the sample was drawn from (with 'id' and 'disposition' columns)")


def _contradiction_notes(contradictions: pd.DataFrame) -> list[str]:
    if not len(contradictions):
        return []
    named = ", ".join(contradictions["agent_run_id"].astype(str).unique()[:5])
    more = contradictions["agent_run_id"].nunique() - 5
    return [f"{len(contradictions)} verdict(s) contradict themselves ('wrong', but the disposition it "
            f"should have had is the recorded one): {named}{f' and {more} more' if more > 0 else ''}. "
            "They count as unsure (in neither accuracy nor the confusion table) until the reviewer "
            "gives a new verdict; see report['contradictions']."]


def _mark_outside(votes: pd.DataFrame, runs: pd.DataFrame, notes: list[str]) -> int:
    """Flag (in ``votes["_outside"]``) the votes on runs missing from ``runs``; how many are judged."""
    if not len(votes):
        return 0
    in_runs = votes["agent_run_id"].astype(object).isin(values_by_run(runs, votes["agent_run_id"], "id").index)
    judged_vote = votes["verdict"].isin(["correct", "wrong", "unsure"])
    votes["_outside"] = (~in_runs).to_numpy()
    outside = int((~in_runs & judged_vote).sum())
    if outside:
        notes.append(f"{outside} verdict(s) are on runs not in runs (e.g. runs of a shorter window than the "
                     "sample was drawn from): they count in their disposition's stratum without finite "
                     "population correction. Pass the runs the sample was drawn from.")
    return outside


def _weighted_overall_and_agents(votes: pd.DataFrame, runs: pd.DataFrame, strata: Sequence[str], confidence: float,
                                 left_out: int, notes: list[str]) -> tuple[pd.Series, pd.DataFrame]:
    """The stratified "(all)" row and the by_agent table; sets each vote's agent in ``votes``."""
    strata_votes, strata_runs = crossed_strata(votes, runs, strata)
    overall, _ = weighted_accuracy(strata_votes, strata_runs, None, confidence)
    by = "agent_name" if "agent_name" in runs and runs["agent_name"].notna().any() else "agent_id"
    agent = votes["agent_run_id"].astype(object).map(values_by_run(runs, votes["agent_run_id"], by))
    if "agent_id" in votes and "agent_id" in runs:
        # A run missing from runs keeps the agent its verdict names.
        named = votes["agent_id"].astype(object)
        if by != "agent_id":
            names = runs[["agent_id", by]].drop_duplicates("agent_id")
            named = named.map(pd.Series(names[by].astype(object).to_numpy(),
                                        index=names["agent_id"].astype(object).to_numpy()))
        agent = agent.where(agent.notna(), named)
    votes[by] = agent
    strata_votes, strata_runs = crossed_strata(votes, runs, strata)
    by_agent, agent_left_out = weighted_accuracy(strata_votes, strata_runs, by, confidence)
    by_agent.index.name = by
    if agent_left_out > left_out:
        notes.append(f"{agent_left_out} verdict(s) are in no agent's runs and left out of by_agent.")
    return overall.iloc[0], by_agent


def _unweighted_overall(counts: pd.DataFrame, z: float, notes: list[str]) -> tuple[pd.Series, pd.DataFrame]:
    total = counts.sum() if len(counts) else pd.Series(0, index=list(VERDICTS))
    overall = pd.Series(accuracy_row(int(total["correct"]), int(total["wrong"]), int(total["unsure"]), z))
    unweighted = ("The (all) row is unweighted (the plain share of the sample): pass runs= (the runs the "
                  "sample was drawn from) to weight each disposition by its share of the runs.")
    notes.insert(0, unweighted)
    warnings.warn(unweighted, UserWarning, stacklevel=3)
    return overall, pd.DataFrame()


def _confusion(votes: pd.DataFrame, population: pd.Series | None) -> pd.DataFrame:
    """Recorded against reviewed disposition, per judged run (those the accuracy counts)."""
    judged = votes[votes["verdict"].isin(["correct", "wrong"])] if len(votes) else votes
    if population is not None and len(judged):
        judged = judged[judged["disposition"].isin(population.index)]
    if not len(judged):
        return pd.DataFrame()
    return pd.crosstab(judged["disposition"].fillna("(none)"), judged["reviewed_disposition"].fillna("(none)"),
                       rownames=["recorded"], colnames=["reviewed"])


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
    crossed_votes, crossed_runs = crossed_strata(votes, runs, strata)
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
