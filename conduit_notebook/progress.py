"""Progress bars: tqdm's (``tqdm.auto``: a widget in Jupyter, text in a terminal), or none.

In Jupyter a finished bar stays on the page: a bar with ``leave=False`` closes its widget
model when done while the page still shows its view, which JupyterLab and Voilà then log as
"widget model not found" (and a saved notebook cannot draw). In a terminal it is wiped as before.
"""

from __future__ import annotations

from typing import Any

__all__ = ["progress_bar"]


def progress_bar(enabled: bool, **kwargs: Any) -> Any:
    """A tqdm bar (notebook widget or terminal text), or None when ``enabled`` is False."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    in_notebook = any(cls.__module__ == "tqdm.notebook" for cls in tqdm.__mro__)
    return tqdm(**{"leave": in_notebook, **kwargs})
