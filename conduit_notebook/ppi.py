"""Judge-assisted review accuracy: an automatic verdict on every run (an LLM judge the team runs,
a rule, or the conversation's outcomes) corrected by the human verdicts on a few of them.

Prediction-powered inference (Angelopoulos, Bates, Fannjiang, Jordan, Zrnic, *Science* 2023),
with the power tuning of PPI++ (Angelopoulos, Duchi, Zrnic 2024) and stratified as the review is
(Fisch et al. 2024, "Stratified prediction-powered inference"): in each stratum h (a recorded
disposition) with N_h runs, all judged by the judge (predictions f in [0, 1]: the probability that
the recorded disposition is right) and n_h of them by people (y in {0, 1}),

    theta_h = lambda * mean_N(f) + mean_n(y - lambda * f),

and theta = sum_h W_h theta_h with W_h = N_h / N. lambda is tuned once over all strata to the
variance-minimising Cov(y, f) / ((1 + n/N) Var(f)), clipped to [0, 1]: a judge that agrees with
nobody gets lambda near 0 and the estimate is the human-only one; a constant judge gets 0.

Where naive intervals under-cover (small strata, judges that almost always agree: a stratum's
few reviewed residuals y - lambda f often hold no disagreement at all, and its variance looks
like 0; measured, 24 reviews a stratum and a judge agreeing 95% of the time covered 85%): each
stratum's residual variance is the larger of its own and its own shrunk towards the pooled one
(:data:`SHRINK` pseudo-reviews), the pooled one has a floor of one disagreement in n + 2 reviews,
and the interval uses Student's t with n - strata degrees of freedom. Checked by simulation
(docs/judge.md, benchmarks/sim_judge.py).

>>> report = review_report(results, runs, predictions=judge["right_probability"])
>>> report["accuracy"].loc["(all)"], report["human_only"], report["judge"]
"""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np
import pandas as pd

from .stats import z_value

__all__ = ["METHOD", "SHRINK", "judge_from_outcomes", "ppi_accuracy", "predictions_for", "read_predictions"]

#: Pseudo-reviews of the pooled residual variance added to each stratum's own.
SHRINK = 30.0
METHOD = ("stratified prediction-powered estimate (PPI++, power-tuned lambda; Angelopoulos et al. 2023, "
          "2024; Fisch et al. 2024), each disposition weighted by its share of the runs; residual variance "
          "shrunk to the pooled one (floor: one disagreement in n + 2), Student t interval")


def predictions_for(runs: pd.DataFrame, predictions: Any) -> pd.Series:
    """The judge's verdict per run id (float in [0, 1]; missing where the judge gave none), from a
    Series indexed by run id or the name of a column of ``runs``; a ValueError names what is wrong."""
    if isinstance(predictions, str):
        if predictions not in runs.columns:
            raise ValueError(f"predictions must be a Series indexed by run id or a column of runs; "
                             f"runs has no column {predictions!r}")
        values = pd.Series(runs[predictions].to_numpy(), index=runs["id"].astype(object).to_numpy())
    elif isinstance(predictions, pd.Series):
        values = predictions.copy()
        values.index = values.index.astype(object)
    else:
        raise ValueError(f"predictions must be a Series indexed by run id (True/False or a probability "
                         f"in [0, 1]) or the name of a column of runs; got {type(predictions).__name__}")
    values = values[~values.index.duplicated(keep="last")]
    numbers = pd.to_numeric(values.astype(object).map(lambda v: float(v) if isinstance(v, (bool, np.bool_)) else v),
                            errors="coerce")
    bad = values.notna() & (numbers.isna() | (numbers < 0) | (numbers > 1))
    if bad.any():
        raise ValueError(f"predictions must be True/False or probabilities in [0, 1]; got {values[bad].iloc[0]!r} "
                         f"for run {values[bad].index[0]!r}")
    return numbers.astype(float)


def _t_quantile(confidence: float, df: float) -> float:
    """Student's t quantile (Cornish-Fisher expansion around the normal; exact enough for df >= 3)."""
    z = z_value(confidence)
    if not math.isfinite(df) or df > 1e6:
        return z
    df = max(df, 1.0)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    return z + g1 / df + g2 / df**2 + g3 / df**3


def ppi_accuracy(strata: pd.Series, reviewed: pd.Series, human: pd.Series, judge: pd.Series, *,
                 confidence: float = 0.95) -> dict[str, Any]:
    """The stratified PPI++ accuracy (see the module docstring).

    ``strata``: every run's stratum (index: run id); ``judge``: every run's prediction in [0, 1]
    (index: run id; missing: no prediction, such a run counts through the human verdicts only);
    ``reviewed``/``human``: the reviewed runs' ids and verdicts (1 right, 0 wrong). Returns the
    estimate, ``ci_low``/``ci_high``, ``lambda``, ``reviewed``, ``runs`` and per-stratum parts."""
    strata = strata.astype(object)
    f_all = judge.reindex(strata.index).astype(float)
    y = pd.Series(np.asarray(human, dtype=float), index=pd.Index(reviewed, dtype=object))
    y = y[y.index.isin(strata.index)]
    f_rev = f_all.reindex(y.index)
    h_rev = strata.reindex(y.index)
    sizes = strata.value_counts()
    sizes = sizes[sizes > 0]
    weights = sizes / sizes.sum()
    n, big_n = len(y), len(strata)
    # lambda, once, over the reviewed runs that have a prediction (within-stratum centred).
    both = f_rev.notna()
    lam = 0.0
    if both.sum() >= 3:
        yc = y[both] - y[both].groupby(h_rev[both]).transform("mean")
        fc = f_rev[both] - f_rev[both].groupby(h_rev[both]).transform("mean")
        var_f = float((fc**2).mean())
        if var_f > 1e-12:
            lam = float(np.clip((yc * fc).mean() / ((1 + n / max(big_n, 1)) * var_f), 0.0, 1.0))
    residual = y - lam * f_rev.fillna(0.0)
    residual[~both] = y[~both]  # no prediction: the human verdict alone
    # Pooled residual variance (within strata), with a floor of one disagreement in n + 2.
    centred = residual - residual.groupby(h_rev).transform("mean")
    pooled = float((centred**2).sum() / max(n - residual.groupby(h_rev).ngroups, 1)) if n else 0.25
    pooled = max(pooled, 1.0 / (n + 2))
    estimate, variance, parts = 0.0, 0.0, []
    for stratum, weight in weights.items():
        members = strata.index[strata.to_numpy() == stratum]
        r = residual[h_rev.to_numpy() == stratum]
        f_pop = f_all.reindex(members)
        k = len(r)
        if k == 0:  # nobody reviewed it: the judge alone cannot be trusted; widest case
            theta, var = float(f_pop.mean()) if f_pop.notna().any() else 0.5, 0.25
        else:
            own = float(r.var(ddof=1)) if k > 1 else pooled
            s2 = max(own, (k * own + SHRINK * pooled) / (k + SHRINK))  # never below its own
            mean_f = float(f_pop.mean()) if f_pop.notna().any() else 0.0
            theta = lam * mean_f + float(r.mean())
            var_f = float(f_pop.var(ddof=1)) if f_pop.notna().sum() > 1 else 0.0
            var = s2 / k + lam**2 * var_f / max(len(members), 1)
        estimate += weight * theta
        variance += weight**2 * var
        parts.append({"stratum": stratum, "runs": int(sizes.loc[cast(Any, stratum)]), "reviewed": k, "estimate": theta})
    t = _t_quantile(confidence, max(n - len(weights), 1))
    half = t * math.sqrt(variance)
    return {"estimate": float(np.clip(estimate, 0, 1)), "ci_low": float(max(0.0, estimate - half)),
            "ci_high": float(min(1.0, estimate + half)), "half_width": half, "lambda": lam,
            "reviewed": n, "runs": big_n, "strata": pd.DataFrame(parts)}


def read_predictions(path: str | Any) -> pd.Series:
    """A judge's verdicts from a CSV file: a column ``agent_run_id`` and a column ``prediction``
    (True/False, 1/0, right/wrong, or a probability in [0, 1] that the recorded disposition is
    right). A ValueError says what is wrong with a file that is not that."""
    try:
        frame = pd.read_csv(path, dtype={"agent_run_id": str})
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValueError(f"--judge must be a CSV file with columns agent_run_id and prediction; {path}: {exc}") from None
    missing = [c for c in ("agent_run_id", "prediction") if c not in frame.columns]
    if missing:
        raise ValueError(f"--judge {path}: the CSV needs the columns agent_run_id and prediction "
                         f"(True/False or a probability); it lacks {', '.join(missing)}")
    words = {"true": 1.0, "false": 0.0, "right": 1.0, "wrong": 0.0, "correct": 1.0}
    values = frame["prediction"].map(lambda v: words.get(str(v).strip().lower(), v))
    numbers = pd.to_numeric(values, errors="coerce")
    bad = frame["prediction"].notna() & (numbers.isna() | (numbers < 0) | (numbers > 1))
    if bad.any():
        raise ValueError(f"--judge {path}: prediction must be True/False, right/wrong or a probability in [0, 1]; "
                         f"line {int(bad.to_numpy().nonzero()[0][0]) + 2} has {frame['prediction'][bad].iloc[0]!r}")
    return pd.Series(numbers.to_numpy(dtype=float), index=frame["agent_run_id"].astype(object).to_numpy(), name="judge")


def judge_from_outcomes(outcomes: pd.DataFrame) -> pd.Series:
    """A judge from what happened after each run (:func:`conduit_notebook.outcomes`): a
    resolution that did not hold (``came_back_escalated``) or an escalation an operator dismissed
    is predicted wrong (0), a run that ``held`` or an escalation an operator acted on right (1);
    other cases (came back without an escalation, pending, unknown) get no prediction. Indexed
    by run id, for ``review_report(..., predictions=...)``."""
    if "outcome" not in outcomes or "agent_run_id" not in outcomes:
        raise ValueError("judge_from_outcomes takes the frame from outcomes(runs, ...) (columns agent_run_id, outcome)")
    mapping = {"came_back_escalated": 0.0, "escalation_dismissed": 0.0, "held": 1.0, "escalation_acted": 1.0}
    values = outcomes["outcome"].astype(object).map(mapping).astype(float)
    return pd.Series(values.to_numpy(), index=outcomes["agent_run_id"].astype(object).to_numpy(), name="judge")
