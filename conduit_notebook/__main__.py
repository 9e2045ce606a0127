"""``python -m conduit_notebook``: the ``conduit-notebook`` command (for a venv whose scripts are not on PATH)."""

import sys

from .cli import main

if __name__ == "__main__":  # pragma: no cover - run as a module by the tests' subprocesses
    sys.exit(main())
