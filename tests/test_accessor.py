"""``frame.conduit``: every method of the accessor's table delegates to its module function with
the same arguments and defaults (they are not copied by hand, so none can drift)."""

from __future__ import annotations

import inspect

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from conduit_notebook import analysis, plots, runs_frame, tool_calls_frame
from conduit_notebook.accessor import METHODS
from conduit_notebook.demo import DemoData

from .conftest import DEMO_END

MODULES = {"analysis": analysis, "plots": plots}


@pytest.fixture(scope="module")
def demo_frames():
    data = DemoData(runs=600, agents=3, seed=4, end=DEMO_END)
    names = {a["id"]: a["name"] for a in data.agents}
    return runs_frame(data.records(), agent_names=names), tool_calls_frame(data.records())


def _drawn(ax):
    """What an Axes shows, comparably: bar geometry, line data and texts."""
    return ([np.round(p.get_extents().bounds, 6).tolist() for p in ax.patches],
            [np.asarray(line.get_xydata()).tolist() for line in ax.lines],
            [t.get_text() for t in ax.texts], ax.get_title())


@pytest.mark.parametrize("name", sorted(METHODS))
def test_each_method_is_its_function(name, demo_frames):
    runs, calls = demo_frames
    module, kind = METHODS[name]
    function = getattr(MODULES[module], name)
    frame, other = (runs, calls) if kind == "runs" else (calls, runs)
    method = getattr(frame.conduit, name)
    expected = inspect.signature(function)
    assert list(inspect.signature(method).parameters.values()) == list(expected.parameters.values())[1:]
    assert method.__doc__ == function.__doc__ and method.__name__ == name
    args = (runs,) if name == "tool_stats" else ()
    if module == "plots":
        assert _drawn(method(*args, ax=plt.figure().gca())) == _drawn(function(frame, *args, ax=plt.figure().gca()))
    else:
        pd.testing.assert_frame_equal(method(*args), function(frame, *args))
    with pytest.raises(AttributeError, match=f"conduit.{name}\\(\\) works on a"):
        getattr(other.conduit, name)


def test_review_sample_by_margin_through_the_accessor(demo_frames):
    # The hand-written wrapper defaulted n=50 while the function defaults n=None: margin= raised
    # "pass n ... or margin, not both".
    runs, _ = demo_frames
    via_accessor = runs.conduit.review_sample(margin=0.1)
    pd.testing.assert_frame_equal(via_accessor, analysis.review_sample(runs, margin=0.1))
    assert len(via_accessor) > 0


def test_the_accessor_lists_its_methods(demo_frames):
    runs, _ = demo_frames
    assert set(METHODS) <= set(dir(runs.conduit))
    assert {"json", "json_columns", "input_json", "output_json", "json_normalize"} <= set(dir(runs.conduit))


def _in_fresh_python(code: str) -> str:
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_package_registers_the_accessor_and_frames_imports_nothing_above_it():
    # frames.py no longer imports the accessor (issue 20): the package does, lazily, on the first
    # name taken from it, including `demo`; importing the package alone stays light (no pandas).
    assert _in_fresh_python("import sys, conduit_notebook; print('pandas' in sys.modules)") == "False"
    assert _in_fresh_python("from conduit_notebook import runs_frame; print(type(runs_frame([]).conduit).__name__)") \
        == "ConduitAccessor"
    assert _in_fresh_python("import pandas as pd\nfrom conduit_notebook import demo\nprint(hasattr(pd.DataFrame, 'conduit'))") \
        == "True"
