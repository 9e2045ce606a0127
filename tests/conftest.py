from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conduit_notebook import ConduitClient, demo, times

#: When every test's demo data ends, and what the product takes for "now" in every test (the
#: ``clock`` fixture): no test depends on the date, the time of day or the machine's clock.
DEMO_END = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)

# The reference's own example bodies, kept beside the API description (../shared/api/examples).
EXAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "api" / "examples"
# A copy inside the repo, so the tests do not depend on the checkout's neighbours.
EXAMPLES_COPY = Path(__file__).resolve().parent / "data" / "examples"


def load_example(name: str) -> dict:
    return json.loads((EXAMPLES_COPY / name).read_text())


@pytest.fixture(autouse=True)
def _close_figures():
    """No test leaves pyplot figures open for the next one (pyplot only if a test imported it:
    some tests check that importing the package does not)."""
    yield
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Every test gets its own default cache file: nothing touches the user's cache."""
    path = tmp_path / "cache" / "runs.sqlite"
    monkeypatch.setenv("CONDUIT_NOTEBOOK_CACHE", str(path))
    return path


class FixedClock:
    """A stopped clock standing in for :func:`conduit_notebook.times.utc_now`; set ``now`` to move it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    """The product's clock, stopped at DEMO_END in every test: spans such as ``since="7d"``,
    ``DemoData()`` without ``end`` and a report's date all read it. Subprocesses keep the real
    clock (tests/README.md: the whole suite under a faked one)."""
    fixed = FixedClock(DEMO_END)
    monkeypatch.setattr(times, "utc_now", fixed)
    return fixed


@pytest.fixture(scope="session")
def _shared_server():
    with demo.serve(runs=450, agents=3, seed=1, end=DEMO_END) as server:
        yield server


@pytest.fixture
def server(_shared_server):
    """The session's demo server, with a fresh request log and no faults left over."""
    _shared_server.clear_faults()
    _shared_server.reset_log()
    yield _shared_server
    _shared_server.clear_faults()
    _shared_server.wait_idle()


@pytest.fixture
def client(server):
    """A client of the demo server that is not slowed by pacing."""
    with ConduitClient(server.token, base_url=server.base_url, requests_per_minute=60_000,
                       max_retries=3) as c:
        yield c
