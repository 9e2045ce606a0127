"""The two mistakes a QA lead hunts for, side by side per agent: resolutions that did not hold
(the guest came back to a run that was escalated) and escalations an operator dismissed. Drawn
from :func:`conduit_notebook.escalation_quality`, which computes; this module only draws."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import PercentFormatter

from ..conversation_outcomes import escalation_quality

__all__ = ["plot_escalation_quality"]

#: (column, label, colour) of the two bars.
MISTAKES = (("came_back_escalated_rate", "resolved, but the guest came back to an escalation", "#d62728"),
            ("dismissed_rate", "escalated, but the operator dismissed it", "#7f7f7f"))


def plot_escalation_quality(runs: pd.DataFrame, escalations: pd.DataFrame | None = None, *,
                            by: str = "agent_name", within: Any = "24h", ax: Axes | None = None,
                            outcomes_table: pd.DataFrame | None = None, **kwargs: Any) -> Axes:
    """Per group (``by``), the share of judged resolved runs whose guest came back within
    ``within`` to an escalated run, and the share of decided escalations an operator dismissed,
    each with its 95% Wilson interval and the count it rests on. ``kwargs`` go to ``Axes.barh``.
    Returns the Axes (a new figure's when ``ax`` is None). ``outcomes_table``: see
    :func:`escalation_quality`."""
    table = escalation_quality(runs, escalations, by=by, within=within,
                               outcomes_table=outcomes_table).drop(index="(all)", errors="ignore")
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 1.2 + 0.8 * max(len(table), 1)), layout="constrained")
    if not len(table):
        ax.text(0.5, 0.5, "no runs", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    y = np.arange(len(table))[::-1].astype(float)
    height = 0.38
    counts = {"came_back_escalated_rate": table["resolved_judged"], "dismissed_rate": table["escalations_decided"]}
    top = 0.0
    for k, (column, label, colour) in enumerate(MISTAKES):
        values = table[column].to_numpy(dtype=float)
        low = values - table[f"{column}_ci_low"].to_numpy(dtype=float)
        high = table[f"{column}_ci_high"].to_numpy(dtype=float) - values
        where = y + (height / 2 if k == 0 else -height / 2)
        shown = np.nan_to_num(values)
        ax.barh(where, shown, height=height * 0.95, color=colour, label=label,
                xerr=[np.nan_to_num(low), np.nan_to_num(high)], error_kw={"capsize": 3, "elinewidth": 1},
                **kwargs)
        ends = np.nan_to_num(table[f"{column}_ci_high"].to_numpy(dtype=float))
        top = max(top, float(ends.max()))
        for yy, end, value, n in zip(where, ends, values, counts[column], strict=False):
            text = "no runs to judge" if not n else f"{value:.0%} of {int(n):,}"
            ax.text(end + 0.01, yy, text, va="center", fontsize="small")
    ax.set_yticks(y, [str(i).replace("$", r"\$") for i in table.index])
    ax.set_xlim(0, min(1.0, top + 0.22) if top > 0 else 0.3)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    span = pd.Timedelta(table.attrs.get("within", within))
    ax.set_xlabel(f"share of runs (95% interval); came back = a later run of the conversation within "
                  f"{_span_text(span)}")
    ax.set_title("Two mistakes: resolutions that did not hold, escalations dismissed")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=1,
              frameon=False, fontsize="small")
    return ax


def _span_text(span: pd.Timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:g} h" if hours < 48 else f"{hours / 24:g} d"
