"""Statistics, in one place: intervals, tests, corrections and bootstraps that the tables, plots,
widgets and the report share (issue 20). Pure functions of numbers and arrays; nothing here
knows a frame.

- :mod:`.intervals`: the normal quantile (:func:`z_value`), Wilson's interval, the Wilson
  interval of a design-based share at Kish's effective sample size, Newcombe's hybrid interval
  of a difference.
- :mod:`.tests`: two-sided normal p-values, the pooled two-proportion test, the chi-square tail
  and a 2 x K table's test, Holm's step-down correction.
- :mod:`.bootstrap`: bootstrap draws of quantiles and of ratios of sums; the percentile and the
  studentized (bootstrap-t) intervals, each with the p-value that inverts it.
- :mod:`.quantiles`: the weighted median.
- :mod:`.agreement`: a stratified accuracy (Wilson at Kish's n), Cohen's kappa and its bootstrap.
- :mod:`.changes`: penalised segmentation of a weighted series (PELT), its noise, and steps
  told from trends.
- :mod:`.allocation`: Neyman's allocation of a sample over strata within floors and sizes.

The one confidence argument of the package is ``confidence=0.95``.
"""

from .agreement import cohen_kappa, kappa_interval, stratified_accuracy
from .bootstrap import (
    BOOTSTRAP_SUBSET,
    percentile_interval,
    quantile_draws,
    ratio_draws,
    ratio_se,
    ratio_t_draws,
    studentized_interval,
)
from .changes import (
    STEP_MARGIN,
    default_penalty,
    extra_variance,
    line_fit,
    outlier_buckets,
    pelt_segments,
    robust_fit,
    robust_segments,
    steps_not_trends,
    trend_segments,
)
from .intervals import Z95, inverted_p_value, newcombe_interval, share_interval, wilson_interval, z_value
from .quantiles import weighted_median
from .tests import chi_square_sf, chi_square_table, holm, two_proportion_test, two_sided

__all__ = ["BOOTSTRAP_SUBSET", "Z95", "chi_square_sf", "chi_square_table", "cohen_kappa", "holm", "inverted_p_value", "kappa_interval", "newcombe_interval",
           "default_penalty", "extra_variance", "line_fit", "outlier_buckets", "pelt_segments", "robust_fit",
           "robust_segments", "STEP_MARGIN", "steps_not_trends", "trend_segments",
           "percentile_interval", "quantile_draws", "ratio_draws", "ratio_se", "ratio_t_draws",
           "studentized_interval", "share_interval", "stratified_accuracy", "two_proportion_test", "two_sided",
           "weighted_median", "wilson_interval", "z_value"]
