"""DispositionReview: step through a sample of runs and record whether each disposition was right."""

from __future__ import annotations

import html
import math
import warnings
from typing import Any

import ipywidgets as w
import numpy as np
import pandas as pd

from ..analysis import review_sample
from ..ppi import ppi_accuracy, predictions_for
from ..review import VERDICTS, ReviewStore, run_votes, stratified_accuracy
from .common import ErrorArea, RunsAndCalls, UserHint, frames_parts, guarded, messages_fetcher
from .inspector import RunInspector

__all__ = ["DispositionReview"]


def _key_events(source: w.DOMWidget, handler: Any) -> Any:
    """An :class:`ipyevents.Event` handing ``handler`` the keys pressed while the mouse is over
    ``source`` (a front end without ipyevents' extension sends none: the shortcut box still works)."""
    from ipyevents import Event

    events = Event(source=source, watched_events=["keydown"], ignore_modifier_key_events=True)
    events.on_dom_event(handler)
    return events


def _escalations_by_run(escalations: pd.DataFrame | None) -> pd.DataFrame | None:
    if escalations is None:
        return None
    if not isinstance(escalations, pd.DataFrame) or "agent_run_id" not in escalations:
        raise TypeError("escalations must be the frame from fetch_escalations() (with an 'agent_run_id' column)")
    latest = escalations.dropna(subset=["agent_run_id"])
    if "created_at" in latest:
        latest = latest.sort_values("created_at", kind="stable")
    return latest.drop_duplicates("agent_run_id", keep="last").set_index("agent_run_id")


def _operator_outcome(escalations: pd.DataFrame | None, run_id: str | None) -> str:
    """" · Conduit operator: dismissed by ana 1.5 h after" for an escalated run, else ""."""
    if escalations is None or run_id is None or run_id not in escalations.index:
        return ""
    row = escalations.loc[run_id]
    status = str(row.get("status")) if pd.notna(row.get("status")) else "unknown"
    who = row.get("reviewed_by")
    text = f" · Conduit operator: <b>{html.escape(status)}</b>"
    if pd.notna(who) and who:
        text += f" by {html.escape(str(who))}"
    created, reviewed = row.get("created_at"), row.get("reviewed_at")
    if pd.notna(created) and pd.notna(reviewed):
        text += f" {(reviewed - created).total_seconds() / 3600:.1f} h after the escalation"
    return text


class DispositionReview(w.VBox, ErrorArea):
    """Step through a sample of runs and record whether each disposition was right.

    ``sample``: a runs frame (default: :func:`review_sample` of 50, stratified by disposition; a
    sample from ``review_sample(runs, margin=0.05)`` carries its target). Each verdict (correct,
    wrong with the right disposition, unsure; and a note) is written to ``store`` (a CSV file) at
    once; reopening with the same store and reviewer resumes at the first run not yet judged.
    ``.results`` is the verdicts so far. The header shows the overall accuracy so far, weighted
    back to the runs, with its 95% interval against the sample's target margin, and says when the
    target is reached. ``escalations`` (from :func:`fetch_escalations`) shows what Conduit's
    operators did with an escalated run. "should be" offers the dispositions seen in the runs; a
    new one is recorded after a second click, as a confirmation.

    ``predictions`` (a judge's verdict by run id, as ``review_report(predictions=)`` takes it):
    the judge's verdict on a run is shown only **after** the reviewer has given theirs (the line
    ``judge`` under the header), so that it cannot anchor them.
    """

    def __init__(self, frames: Any, *, sample: pd.DataFrame | None = None,
                 store: str = "disposition_reviews.csv", reviewer: str | None = None,
                 escalations: pd.DataFrame | None = None, predictions: pd.Series | None = None) -> None:
        self._runs, self._calls = frames_parts(frames)
        self._predictions = predictions
        self._judge_line = w.HTML()
        self.sample = sample if sample is not None else review_sample(self._runs, n=50)
        if not isinstance(self.sample, pd.DataFrame) or "id" not in self.sample:
            raise TypeError("sample must be a runs DataFrame (with an 'id' column)")
        self.store = ReviewStore(store)
        self.reviewer = reviewer or ""
        self._ids = list(self.sample["id"].astype(object))
        plan = self.sample.attrs.get("review_plan")
        self.target = plan.attrs.get("margin") if isinstance(plan, pd.DataFrame) else None
        self._escalations = _escalations_by_run(escalations)
        self.known_dispositions = sorted({str(d) for d in self._runs["disposition"].dropna().unique()})
        self._population = self._runs["disposition"].astype(object).value_counts()  # the strata, once
        self._new_disposition: tuple[str | None, str] | None = None
        self._errors = w.HTML()
        self._progress = w.HTML()
        self.interval = w.HTML()
        self._inspector = RunInspector(RunsAndCalls(self.sample, self._calls), run_ids=self._ids,
                                       fetch_trace=getattr(frames, "fetch_trace", None),
                                       fetch_messages=messages_fetcher(frames), context_runs=self._runs)
        for button in ("previous", "next"):  # the review moves on by itself
            self._inspector.controls[button].layout.display = "none"
        self._correct = w.Button(description="✔ correct", button_style="success")
        self._wrong = w.Button(description="✘ wrong", button_style="danger")
        self._unsure = w.Button(description="? unsure", button_style="warning")
        self._right = w.Combobox(options=self.known_dispositions, placeholder="the right disposition",
                                 description="should be", ensure_option=False, layout=w.Layout(width="320px"))
        self._note = w.Textarea(placeholder="note (optional)", layout=w.Layout(width="520px", height="60px"))
        self._back = w.Button(description="◀ back")
        self._skip = w.Button(description="skip ▶")
        self._correct.on_click(self._on_correct_click)
        self._wrong.on_click(self._on_wrong_click)
        self._unsure.on_click(self._on_unsure_click)
        self._back.on_click(self._on_back_click)
        self._skip.on_click(self._on_skip_click)
        # The shortcuts: pressed with the mouse over the run shown (ipyevents hands the page's key
        # events to Python there, and keeps them from Jupyter's own shortcuts: "b" adds no cell),
        # or typed in a small box, where the front end has no ipyevents.
        self._key_events = _key_events(self._inspector, self._on_key_event)
        self._keys = w.Text(placeholder="keys: c w u n b", continuous_update=True, layout=w.Layout(width="150px"),
                            tooltip="c correct, w wrong, u unsure, n next (skip), b back: pressed with the mouse "
                                    "over the run, or typed here")
        self._keys.observe(self._on_keys_change, names="value")
        super().__init__([
            self._progress, self.interval, self._judge_line, self._errors,
            w.HBox([self._correct, self._wrong, self._right, self._unsure, self._keys]),
            w.HBox([self._note, w.VBox([self._back, self._skip])]),
            self._inspector,
        ])
        self.add_class("conduit-disposition-review")
        done = self.store.reviewed(self.reviewer)
        self.position = next((i for i, run_id in enumerate(self._ids) if run_id not in done), len(self._ids))
        self._go(self.position)

    @property
    def controls(self) -> dict[str, w.Widget]:
        """The buttons and fields by name (``correct``, ``wrong``, ``unsure``, ``right``,
        ``note``, ``back``, ``skip``, ``keys``: the shortcut box; ``key_events``: the
        :class:`ipyevents.Event` that hands over the keys pressed with the mouse over the run),
        what the review shows (``progress``, ``interval``, ``errors``) and its ``inspector``: click
        and set values here, as a reviewer would."""
        return {"correct": self._correct, "wrong": self._wrong, "unsure": self._unsure, "right": self._right,
                "note": self._note, "back": self._back, "skip": self._skip, "keys": self._keys,
                "key_events": self._key_events,
                "progress": self._progress,
                "interval": self.interval, "judge": self._judge_line, "errors": self._errors,
                "inspector": self._inspector}

    @property
    def results(self) -> pd.DataFrame:
        """The verdicts in the store for this sample (every reviewer's latest)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the widget shows unreadable rows itself (_show_interval)
            frame = self.store.load()
        return frame[frame["agent_run_id"].isin(self._ids)].reset_index(drop=True)

    @property
    def current(self) -> str | None:
        return self._ids[self.position] if self.position < len(self._ids) else None

    def reached(self) -> dict[str, float]:
        """The overall accuracy so far (every reviewer, one vote a run), weighted back to the runs:
        ``estimate``, ``ci_low``, ``ci_high``, ``half_width`` (see :func:`stratified_accuracy`)."""
        votes = run_votes(self.results) if len(self.results) else None
        population = self._population
        if votes is None:
            return stratified_accuracy(np.zeros(len(population)), np.zeros(len(population)), population)
        recorded = votes["disposition"].astype(object)
        correct = (votes["verdict"] == "correct").groupby(recorded).sum().reindex(population.index, fill_value=0)
        judged = votes["verdict"].isin(["correct", "wrong"]).groupby(recorded).sum().reindex(population.index, fill_value=0)
        human = stratified_accuracy(correct, judged, population)
        if self._predictions is None:
            return human
        # With a judge: the judge-assisted interval, when it is the narrower (as review_report).
        strata = pd.Series(self._runs["disposition"].astype(object).to_numpy(),
                           index=self._runs["id"].astype(object).to_numpy()).dropna()
        done = votes[votes["verdict"].isin(["correct", "wrong"])]
        assisted = ppi_accuracy(strata, done["agent_run_id"].astype(object),
                                (done["verdict"] == "correct").astype(float),
                                predictions_for(self._runs, self._predictions))
        if assisted["lambda"] > 0 and assisted["half_width"] < human["half_width"]:
            return {**human, **{k: assisted[k] for k in ("estimate", "ci_low", "ci_high", "half_width")},
                    "with_judge": True}
        return human

    def _show_interval(self) -> None:
        now = self.reached()
        target = f" · target ±{100 * self.target:.1f} points" if self.target else ""
        if math.isnan(now["estimate"]):
            self.interval.value = (f"<span style='color:#555'>Accuracy so far: no verdicts yet{target}</span>"
                                   + self._rejected_note())
            return
        how = "with the judge, weighted to the runs" if now.get("with_judge") else "weighted to the runs"
        text = (f"Accuracy so far ({how}): <b>{now['estimate']:.1%}</b>, 95% interval "
                f"{now['ci_low']:.1%}–{now['ci_high']:.1%} (±{100 * now['half_width']:.1f} points){target}")
        if self.target and now["half_width"] <= self.target:
            text += " · <b style='color:#1a7f37'>target reached: you can stop here</b>"
        elif now["unreviewed_share"] > 0:
            text += f" · {now['unreviewed_share']:.0%} of runs in dispositions not yet judged"
        self.interval.value = f"<span style='color:#333'>{text}</span>" + self._rejected_note()

    def _rejected_note(self) -> str:
        if not len(self.store.rejected):
            return ""
        return (f"<br><span style='color:#a40000'>{len(self.store.rejected)} row(s) of {html.escape(str(self.store.path))} "
                "could not be read (torn by a crash or not verdicts); they are kept in the file, listed in "
                "<code>review.store.rejected</code>.</span>")

    def _go(self, position: int) -> None:
        self.position = max(0, min(position, len(self._ids)))
        self._new_disposition = None
        done = self.store.reviewed(self.reviewer)
        judged = sum(1 for i in self._ids if i in done)
        self._show_interval()
        if self.current is None:
            self._progress.value = (f"<b>Review complete</b>: {judged} of {len(self._ids)} runs judged. "
                                    "See <code>.results</code> and <code>review_report()</code>.")
            for button in (self._correct, self._wrong, self._unsure, self._skip):
                button.disabled = True
            return
        for button in (self._correct, self._wrong, self._unsure, self._skip):
            button.disabled = False
        run = self.sample.iloc[self.position]
        operator = _operator_outcome(self._escalations, self.current)
        self._progress.value = (f"<b>Run {self.position + 1} of {len(self._ids)}</b> · {judged} judged · "
                                f"recorded disposition: <b>{html.escape(str(run['disposition']))}</b>{operator}")
        self._right.value = ""
        self._note.value = ""
        self._inspector.show(self.current)

    def _record(self, verdict: str) -> None:
        self._clear_error()
        run = self.sample.iloc[self.position]
        right = self._right.value.strip() or None
        recorded = None if pd.isna(run["disposition"]) else str(run["disposition"])
        if verdict == "wrong":
            if not right:
                raise UserHint("Pick or type the right disposition in 'should be' before marking the run wrong.")
            known = {d.casefold(): d for d in self.known_dispositions}
            right = known.get(right.casefold(), right)
            if recorded is not None and right == recorded:
                raise UserHint(f"'should be' is the recorded disposition ({recorded}): pick the disposition the "
                                 "run should have had, or mark it correct.")
            if right not in self.known_dispositions and self._new_disposition != (self.current, right):
                self._new_disposition = (self.current, right)
                raise UserHint(f"'{right}' is not a disposition in these runs. Click ✘ wrong again to record it "
                                 "as a new disposition, or pick one from the list.")
        self.store.add(agent_run_id=str(run["id"]), agent_id=str(run["agent_id"]), disposition=recorded,
                       verdict=verdict, reviewed_disposition=right if verdict == "wrong" else None,
                       note=self._note.value, reviewer=self.reviewer)
        self._judge_line.value = self._judge_said(str(run["id"]), verdict)
        self._go(self.position + 1)

    def _judge_said(self, run_id: str, verdict: str) -> str:
        """The judge's verdict on the run just judged (never on the one being judged)."""
        if self._predictions is None:
            return ""
        said = self._predictions.get(run_id) if hasattr(self._predictions, "get") else None
        if said is None or pd.isna(said):
            return f"<span style='color:#666'>The judge gave no verdict on the last run ({html.escape(run_id)}).</span>"
        judge = "right" if float(said) >= 0.5 else "wrong"
        yours = {"correct": "right", "wrong": "wrong"}.get(verdict, "unsure")
        mark = "agree" if judge == yours else "disagree"
        return (f"<span style='color:#555'>Last run ({html.escape(run_id)}): you said <b>{yours}</b>, the judge "
                f"said <b>{judge}</b> ({float(said):.2f}): you {mark}.</span>")

    def judge(self, verdict: str, *, right: str | None = None, note: str = "") -> None:
        """Record a verdict on the current run, as the buttons do."""
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
        self._right.value = right or ""
        self._note.value = note
        if verdict == "wrong" and right and self._right.value.strip() not in self.known_dispositions:
            self._new_disposition = (self.current, self._right.value.strip())  # a call confirms itself
        self._record(verdict)

    @guarded
    def _on_correct_click(self, _button: Any = None) -> None:
        self._record("correct")

    @guarded
    def _on_wrong_click(self, _button: Any = None) -> None:
        self._record("wrong")

    @guarded
    def _on_unsure_click(self, _button: Any = None) -> None:
        self._record("unsure")

    @guarded
    def _on_back_click(self, _button: Any = None) -> None:
        self._go(self.position - 1)

    @guarded
    def _on_skip_click(self, _button: Any = None) -> None:
        self._go(self.position + 1)

    #: What each shortcut key does.
    KEYS = {"c": "correct", "w": "wrong", "u": "unsure", "n": "skip", "b": "back"}

    def _on_keys_change(self, change: dict[str, Any]) -> None:
        typed = str(change["new"] or "")
        if not typed:
            return
        self._keys.value = ""  # each key once; the box stays empty for the next
        self._press(typed[-1])

    def _on_key_event(self, event: dict[str, Any]) -> None:
        """A key pressed with the mouse over the run (ipyevents' ``keydown``); with Ctrl, Alt or
        Meta held it is the browser's or Jupyter's, and Shift, Escape or arrows do nothing here."""
        key = str(event.get("key") or "")
        if len(key) != 1 or any(event.get(m) for m in ("ctrlKey", "altKey", "metaKey")):
            return
        self._press(key)

    def _press(self, key: str) -> None:
        action = self.KEYS.get(key.lower())
        if action is None:
            self._show_error(UserHint(f"{key!r} is not a shortcut: c correct, w wrong, u unsure, "
                                      "n next (skip), b back"))
        else:
            {"correct": self._on_correct_click, "wrong": self._on_wrong_click, "unsure": self._on_unsure_click,
             "skip": self._on_skip_click, "back": self._on_back_click}[action]()
