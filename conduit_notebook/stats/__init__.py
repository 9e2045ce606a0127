"""Statistics, in one place: intervals, tests and corrections that the tables, plots, widgets and
the report share (issue 20). Pure functions of numbers and arrays; nothing here knows a frame.

- :mod:`.intervals`: the normal quantile (:func:`z_value`), Wilson's interval and the Wilson
  interval of a design-based share at Kish's effective sample size.
- :mod:`.tests`: two-sided normal p-values, the chi-square tail, Holm's step-down correction.

The one confidence argument of the package is ``confidence=0.95``.
"""

from .intervals import Z95, share_interval, wilson_interval, z_value
from .tests import chi_square_sf, holm, two_sided

__all__ = ["Z95", "chi_square_sf", "holm", "share_interval", "two_sided", "wilson_interval", "z_value"]
