"""Shared helpers: best-of-N timing and a line about the machine."""

from __future__ import annotations

import gc
import os
import platform
import time
from collections.abc import Callable
from typing import Any


def best_of(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    """The fastest of ``repeat`` runs (seconds) and the last result: the least noisy figure."""
    best, result = float("inf"), None
    for _ in range(repeat):
        result = None
        gc.collect()  # the same clean start for every contender
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def machine() -> str:
    import numpy
    import pandas
    import pyarrow

    return (f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"pandas {pandas.__version__}, pyarrow {pyarrow.__version__}, numpy {numpy.__version__}")


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (VmHWM), in MB: what the machine had to give,
    including what pandas' memory_usage cannot see (the insides of Python objects)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1000
    return float("nan")  # pragma: no cover - not Linux
