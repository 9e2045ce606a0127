"""The random trace sample behind a runs frame, as the investigations use it: the package's one
sample-design object, :class:`conduit_notebook.stats.design.TraceSample` (kept under its old
names for the investigate modules)."""

from __future__ import annotations

from ..stats.design import TraceSample, trace_sample

Sample = TraceSample

__all__ = ["Sample", "TraceSample", "trace_sample"]
