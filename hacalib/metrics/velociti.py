"""VELOCITI entailment metrics (Saravanan et al., katha-ai/VELOCITI `metrics.py`).

Each item is a pair of P(yes) scores: `p_pos` for the matching side (true caption, or for the control
text-to-video test the true video) and `p_neg` for the contrast side. Functions return one 0/1 value per
item; the registry averages them. Both follow the reference code's strict inequalities:
- ClassicVLE: P(pos) > P(neg). An exact tie counts as wrong: a model that cannot separate the pair
  (a collapsed model gives equal scores everywhere) must score 0, not 50%.
- StrictVLE: P(pos) > 0.5 and P(neg) < 0.5. A score of exactly 0.5 is neither entailed nor refuted,
  so it fails on either side.

May import: numpy.
"""

from __future__ import annotations

import numpy as np


def check_pairs(p_pos, p_neg) -> tuple[np.ndarray, np.ndarray]:
    """Validate paired P(yes) arrays: same 1-D length, at least one item, every value finite in [0, 1]."""
    a = np.asarray(p_pos, dtype=np.float64)
    b = np.asarray(p_neg, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape or a.size == 0:
        raise ValueError(f"p_pos {a.shape} and p_neg {b.shape} must be equal, non-empty 1-D arrays")
    for name, x in (("p_pos", a), ("p_neg", b)):
        bad = ~(np.isfinite(x) & (x >= 0) & (x <= 1))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{name}[{i}] = {x[i]!r} is not a probability in [0, 1]")
    return a, b


def classic_vle(p_pos, p_neg) -> np.ndarray:
    """Per item 1.0 where P(pos) > P(neg) (ties count as wrong), else 0.0."""
    a, b = check_pairs(p_pos, p_neg)
    return (a > b).astype(np.float64)


def strict_vle(p_pos, p_neg, threshold: float = 0.5) -> np.ndarray:
    """Per item 1.0 where P(pos) > threshold and P(neg) < threshold (0.5 itself fails), else 0.0."""
    a, b = check_pairs(p_pos, p_neg)
    return ((a > threshold) & (b < threshold)).astype(np.float64)
