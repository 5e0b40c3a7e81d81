"""Collapse check: a P(yes) that does not depend on the input is a failure, never a result.

A fine-tuned model that answers "Yes" (or "No") to everything gives a constant P(yes); every pairwise
metric on it is meaningless (ClassicVLE 0, mAP at chance). Tables report `pyes_spread` next to each row
and refuse rows where `is_collapsed` is True.

May import: numpy.
"""

from __future__ import annotations

import numpy as np


def pyes_spread(scores) -> dict:
    """Spread of P(yes) over inputs: dict(std, min, max, n_unique, n). Raises ValueError on empty/non-finite."""
    x = np.asarray(scores, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("no scores to summarise")
    if not np.isfinite(x).all():
        raise ValueError(f"score {int(np.flatnonzero(~np.isfinite(x))[0])} is not finite")
    n_unique = int(np.unique(x).size)
    return {
        "std": 0.0 if n_unique == 1 else float(x.std()),  # exact 0 for a constant, not summation noise
        "min": float(x.min()),
        "max": float(x.max()),
        "n_unique": n_unique,
        "n": int(x.size),
    }


def is_collapsed(scores, tol: float = 1e-3) -> bool:
    """True when the P(yes) standard deviation over inputs is at most `tol` (default 1e-3).

    Args:
        scores: P(yes) for every scored input of one run.
        tol: largest standard deviation still called constant. 1e-3 is far above float32 noise of a
            constant output (~1e-7) and far below the spread of a model that separates anything.
    """
    # a single input cannot show that P(yes) varies, so it is flagged too (std 0)
    return pyes_spread(scores)["std"] <= tol
