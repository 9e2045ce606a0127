"""Plots of duration, tokens, cost, dispositions and tool use, in the style of seaborn's
axes-level functions: ``plot_x(frame, *, by=None, ax=None, **kwargs) -> Axes``.

They draw on ``ax`` (without one, on a new figure, as seaborn's figure-level functions do: a
second plot never draws over the first), pass ``**kwargs`` on to matplotlib the way seaborn
does (a keyword the plot sets itself, such as ``color``, is overridden by yours), return the
Axes and never call ``plt.show()``. Units are in the labels (s, tokens, USD); each disposition
has one colour in every plot (:func:`disposition_colors`); 40 groups read as well as 2 (the
``top`` largest, then "other"); an empty frame gives an Axes that says "no runs". Names from the
data are drawn literally (a ``$`` is not read as mathtext). Time plots take ``tz=`` to bucket by
local days.

A figure without a layout engine gets matplotlib's constrained layout, so that tick labels,
annotations and legends stay inside it when saved with ``ax.figure.savefig(...)``; give the
figure a layout engine of your own to keep your margins.

>>> import matplotlib.pyplot as plt
>>> fig, axes = plt.subplots(1, 2, figsize=(12, 4))
>>> plot_duration(runs, by="agent_name", ax=axes[0])
>>> plot_cost(runs, by="agent_name", freq="D", ax=axes[1])

The package has one module per family: ``usage`` (duration, tokens, cost), ``dispositions``,
``tools`` (tool usage and paths), ``compare`` (compare and change points), ``outcomes``
(escalation quality), and ``_style`` for what they share (colours, legends, axes, formatters).
"""

from __future__ import annotations

from ._style import DISPOSITION_COLORS, disposition_colors
from .compare import plot_change_points, plot_compare
from .dispositions import plot_dispositions
from .outcomes import plot_escalation_quality
from .tools import plot_tool_paths, plot_tool_usage
from .usage import plot_cost, plot_duration, plot_duration_vs_tokens, plot_tokens

__all__ = [
    "DISPOSITION_COLORS",
    "disposition_colors",
    "plot_change_points",
    "plot_compare",
    "plot_cost",
    "plot_dispositions",
    "plot_duration",
    "plot_duration_vs_tokens",
    "plot_escalation_quality",
    "plot_tokens",
    "plot_tool_paths",
    "plot_tool_usage",
]
