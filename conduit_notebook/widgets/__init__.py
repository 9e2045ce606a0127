"""Notebook widgets: a run explorer, a run inspector and a disposition review.

>>> from conduit_notebook import RunExplorer, RunInspector, DispositionReview
>>> RunExplorer(frames)                       # filters over summary, duration, tokens, cost... tabs
>>> RunInspector(frames, run_id)              # one run: header, response, reflection, tool trace
>>> review = DispositionReview(frames, reviewer="ana")   # verdicts saved as they are given
>>> review.results                            # the verdicts so far

They take frames (``fetch_runs(...)`` or anything with ``.runs`` and ``.tool_calls``), never a
client. The logic lives in plain functions (:func:`conduit_notebook.analysis.filter_runs`,
:mod:`conduit_notebook.review`); the widgets are thin ``VBox`` subclasses, and an exception in a
callback is shown in the widget, not lost in a log.

One module each: ``explorer.py``, ``inspector.py``, ``disposition_review.py``; ``common.py``
holds what they share.
"""

from .disposition_review import DispositionReview
from .explorer import RunExplorer
from .inspector import PAYLOAD_PREVIEW, RunInspector

__all__ = ["DispositionReview", "PAYLOAD_PREVIEW", "RunExplorer", "RunInspector"]
