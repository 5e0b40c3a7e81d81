"""Many claims checked at 95% each: Holm's step-down adjustment keeps the chance of any false verdict at 5%.

`holm_adjust(p)`: Holm-adjusted p-values, in the input order. A verdict read from adjusted p-values below 0.05 holds
for the whole set of claims at once (family-wise error 5%), under any dependence between them; checking twenty
claims at 95% each instead expects one false verdict in twenty when no claim is true.

May import: numpy.
"""

from __future__ import annotations

import numpy as np


def holm_adjust(p_values) -> np.ndarray:
    """Holm-adjusted p-values: the i-th smallest p times (m - i + 1), made non-decreasing, capped at 1. NaN entries
    (claims not read) stay NaN and do not count in m."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    read = np.flatnonzero(np.isfinite(p))
    if read.size == 0:
        return out
    order = read[np.argsort(p[read], kind="stable")]
    m = order.size
    scaled = p[order] * (m - np.arange(m))
    out[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return out
