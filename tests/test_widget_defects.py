"""Issue 21, items 10 and 8: the explorer's inspector after a filter leaves no run, reasons too
long for their list, the review's keyboard shortcuts and its hint when "wrong" lacks the right
disposition. Driven through ``controls``, as a user would."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from conduit_notebook import DispositionReview, RunExplorer, runs_frame, tool_calls_frame  # noqa: E402
from conduit_notebook.demo import DemoData  # noqa: E402

from .conftest import DEMO_END  # noqa: E402


class Frames:
    def __init__(self, runs, tool_calls):
        self.runs, self.tool_calls = runs, tool_calls


@pytest.fixture(scope="module")
def frames():
    data = DemoData(runs=600, agents=3, seed=6, end=DEMO_END)
    records = data.records()
    return Frames(runs_frame(records, agent_names={a["id"]: a["name"] for a in data.agents}),
                  tool_calls_frame(records))


def test_filtering_to_no_run_closes_the_inspector(frames):
    explorer = RunExplorer(frames)
    explorer.controls["runs"].value = explorer.controls["runs"].options[0][1]
    assert explorer.inspector is not None
    explorer.controls["text"].value = "no response says this 1f2e3d"
    assert len(explorer.filtered) == 0
    assert explorer.inspector is None  # not an old run shown as "1 of 200" with "next" enabled
    assert "no run passes the filters" in explorer.children[-1].children[0].value


def test_a_filter_that_keeps_the_run_renumbers_the_inspector(frames):
    explorer = RunExplorer(frames)
    explorer.controls["dispositions"].value = ("escalated",)
    run_id = explorer.controls["runs"].options[0][1]
    explorer.controls["runs"].value = run_id
    agent = str(explorer.filtered.set_index("id").loc[run_id, "agent_name"])
    explorer.controls["agents"].value = (agent,)
    inspector = explorer.inspector
    listed = [value for _label, value in explorer.controls["runs"].options]
    assert inspector is not None and inspector.run_id == run_id
    assert inspector.controls["position"].value == f"1 of {len(listed)}"
    assert inspector.controls["next"].disabled is (len(listed) == 1)
    inspector.controls["next"].click()
    assert inspector.run_id == listed[1]


def test_reasons_can_be_read_in_full(frames):
    explorer = RunExplorer(frames)
    reasons = list(explorer.controls["reasons"].options)
    longest = max(reasons, key=len)
    assert len(longest) > 35  # longer than the list shows
    full = explorer.controls["reasons_full"].value
    assert all(r.replace("&", "&amp;").replace("'", "&#x27;") in full for r in reasons)
    explorer.controls["reasons"].value = (longest,)
    assert f"font-weight:bold'>{longest}" in explorer.controls["reasons_full"].value.replace("&#x27;", "'")


def test_review_keys_record_verdicts_and_move(frames, tmp_path):
    review = DispositionReview(frames, store=str(tmp_path / "r.csv"), reviewer="ana")
    first = review.current
    review.controls["keys"].value = "c"
    assert review.position == 1 and review.results.iloc[0]["verdict"] == "correct"
    assert review.results.iloc[0]["agent_run_id"] == first and review.controls["keys"].value == ""
    review.controls["keys"].value = "u"
    assert review.position == 2 and review.results.iloc[1]["verdict"] == "unsure"
    review.controls["keys"].value = "b"
    assert review.position == 1
    review.controls["keys"].value = "n"
    assert review.position == 2 and len(review.results) == 2
    review.controls["keys"].value = "x"
    assert "not a shortcut" in review.controls["errors"].value and review.position == 2



def _press(review, key, **modifiers):
    """A keydown as the browser's ipyevents sends it over the widget's comm, the mouse over the run."""
    event = {"event": "keydown", "key": key, "code": f"Key{key.upper()}", "ctrlKey": False, "altKey": False,
             "metaKey": False, "shiftKey": False, **modifiers}
    review.controls["key_events"]._handle_custom_msg(event, [])


def test_review_keys_pressed_over_the_run_record_verdicts_and_move(frames, tmp_path):
    """Issue 21 item 10: the shortcuts worked only typed into a small box (notebook widgets get no
    key events): now pressed anywhere over the run shown, handed over by ipyevents."""
    from ipyevents import Event

    review = DispositionReview(frames, store=str(tmp_path / "r.csv"), reviewer="ana")
    events = review.controls["key_events"]
    assert isinstance(events, Event) and events.source is review.controls["inspector"]
    assert events.watched_events == ["keydown"]
    first = review.current
    _press(review, "c")
    assert review.position == 1 and review.results.iloc[0]["verdict"] == "correct"
    assert review.results.iloc[0]["agent_run_id"] == first
    _press(review, "U")  # Shift or Caps Lock: the same key
    assert review.position == 2 and review.results.iloc[1]["verdict"] == "unsure"
    _press(review, "b")
    assert review.position == 1
    _press(review, "n")
    assert review.position == 2 and len(review.results) == 2
    _press(review, "c", ctrlKey=True)  # Ctrl+C copies: not a verdict
    _press(review, "Shift")
    _press(review, "ArrowDown")
    assert review.position == 2 and len(review.results) == 2 and not review.controls["errors"].value
    _press(review, "x")
    assert "not a shortcut" in review.controls["errors"].value and review.position == 2

def test_wrong_without_the_right_disposition_is_a_hint_not_an_error(frames, tmp_path):
    review = DispositionReview(frames, store=str(tmp_path / "r.csv"), reviewer="ana")
    review.controls["wrong"].click()
    shown = review.controls["errors"].value
    assert "Pick or type the right disposition" in shown
    assert "Error" not in shown and "ValueError" not in shown and review.position == 0
    review.controls["keys"].value = "w"  # the key says the same
    assert "Pick or type the right disposition" in review.controls["errors"].value and review.position == 0
    with pytest.raises(ValueError, match="right disposition"):  # called from code, it raises
        review.judge("wrong")



def test_a_finished_notebook_progress_bar_keeps_its_widget_model(monkeypatch):
    """A finished bar closed its widget model while the page still showed its view: JupyterLab and
    Voila logged "widget model not found". In Jupyter, tqdm.auto gives tqdm.notebook's bar."""
    import tqdm.auto
    import tqdm.notebook

    from conduit_notebook.fetch_job import progress_bar

    monkeypatch.setattr(tqdm.auto, "tqdm", tqdm.notebook.tqdm)
    bar = progress_bar(True, total=2, desc="traces")
    bar.update(2)
    bar.close()
    assert bar.container.comm is not None  # the model the page shows is still there
    assert progress_bar(False, total=2) is None
