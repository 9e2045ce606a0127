"""Disposition reviews: the verdict store, the plan, and the report, as plain functions.

A reviewer reads a run and says whether its disposition was right: ``correct``, ``wrong`` (with
the disposition it should have had) or ``unsure``. Each verdict is appended to a CSV file the
moment it is given (flushed and synced), so nothing is lost on a kernel restart, and a review
resumes where it stopped. :func:`review_report` turns the verdicts into accuracy per disposition
(with Wilson 95% intervals), a confusion table and the agreement between reviewers.

- :mod:`.store`: :class:`ReviewStore`, the CSV file of verdicts.
- :mod:`.plan`: :func:`review_plan`, how many runs to review per stratum.
- :mod:`.accuracy`: :func:`run_votes` and the stratified accuracy per group of runs.
- :mod:`.report`: :func:`review_report` and :func:`judge_agreement`.

The statistics (:func:`stratified_accuracy`, :func:`cohen_kappa`, :func:`kappa_interval`) live in
:mod:`conduit_notebook.stats.agreement` and are re-exported here.
"""

from ..stats import cohen_kappa, kappa_interval, stratified_accuracy, wilson_interval
from .accuracy import METHOD, run_votes
from .plan import DEFAULT_SAMPLE, MIN_PER_STRATUM, review_plan
from .report import judge_agreement, review_report
from .store import REVIEW_COLUMNS, VERDICTS, ReviewStore

__all__ = ["DEFAULT_SAMPLE", "METHOD", "MIN_PER_STRATUM", "REVIEW_COLUMNS", "VERDICTS", "ReviewStore", "cohen_kappa",
           "judge_agreement", "kappa_interval", "review_plan", "review_report", "run_votes", "stratified_accuracy",
           "wilson_interval"]
