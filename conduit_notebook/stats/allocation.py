"""Allocating a sample over strata: Neyman's allocation within each stratum's bounds
(:func:`neyman_allocation`)."""

from __future__ import annotations

import numpy as np

__all__ = ["neyman_allocation"]


def neyman_allocation(total: float, sizes: np.ndarray, deviations: np.ndarray, floor: np.ndarray | float = 0.0
                      ) -> np.ndarray:
    """``total`` sample units over strata of ``sizes`` N_h and standard deviations S_h: **Neyman's
    allocation** n_h proportional to N_h S_h (Cochran, *Sampling Techniques*, 5.5), bounded to
    ``floor`` <= n_h <= N_h and re-solved for the strata left free (Cochran 5.9, over-allocation):
    a stratum whose share falls below its floor takes the floor, one whose share exceeds its size
    is taken whole, and the rest share what is left in proportion to N_h S_h again, until no
    bound is crossed. This is the allocation of ``total`` with the least variance of the
    stratified mean under those bounds. Fractional (round as the caller needs); a ``total`` below
    the floors gives the floors, above the sizes the sizes."""
    sizes = np.asarray(sizes, dtype=float)
    low = np.minimum(sizes, np.broadcast_to(np.asarray(floor, dtype=float), sizes.shape))
    weight = sizes * np.asarray(deviations, dtype=float)
    out = low.copy()
    free = sizes > low
    while free.any():
        left = total - out[~free].sum()
        mass = weight[free].sum()
        share = (np.full(int(free.sum()), left / free.sum()) if mass <= 0 else left * weight[free] / mass)
        trial = out.copy()
        trial[free] = share
        under = free & (trial < low)
        over = free & (trial > sizes)
        if not under.any() and not over.any():
            return trial
        # Floors first: fixing them leaves less for the others, so no stratum is taken whole
        # that would not be once they are fixed.
        fixed = under if under.any() else over
        out[fixed] = np.where(under, low, sizes)[fixed]
        free &= ~fixed
    return out
