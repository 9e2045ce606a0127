from __future__ import annotations

import json
from pathlib import Path

import pytest

from conduit_notebook import ConduitClient, demo

# The reference's own example bodies, kept beside the API description (../shared/api/examples).
EXAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "api" / "examples"
# A copy inside the repo, so the tests do not depend on the checkout's neighbours.
EXAMPLES_COPY = Path(__file__).resolve().parent / "data" / "examples"


def load_example(name: str) -> dict:
    return json.loads((EXAMPLES_COPY / name).read_text())


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Every test gets its own default cache file: nothing touches the user's cache."""
    path = tmp_path / "cache" / "runs.sqlite"
    monkeypatch.setenv("CONDUIT_NOTEBOOK_CACHE", str(path))
    return path


@pytest.fixture(scope="session")
def _shared_server():
    with demo.serve(runs=450, agents=3, seed=1) as server:
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
