"""Where the package keeps its files: the default cache path (and the pace file beside it).

Light on purpose (no pandas): the client needs the path before anything heavy is imported.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

#: The environment variable that moves the run cache (and the pace file beside it).
CACHE_ENV = "CONDUIT_NOTEBOOK_CACHE"


def default_cache_path() -> Path:
    """``$CONDUIT_NOTEBOOK_CACHE`` if set, else ``runs.sqlite`` in the user's cache directory."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_cache_dir("conduit-notebook", appauthor=False)) / "runs.sqlite"
