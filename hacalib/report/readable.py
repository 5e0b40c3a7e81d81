"""Tables for reading: estimates with their intervals in one cell, one decimal, integers as integers.

The tidy CSVs keep full precision; what a person reads (markdown files, notebook outputs) goes through `readable`.

May import: numpy, pandas, `hacalib.report.tables` (the cell format).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .tables import format_cell

# (estimate column, its scale): summaries hold fractions (shown as %), claim tables hold points already
_ESTIMATES = (("value", 100.0), ("difference", 1.0))


def _is_whole(col: pd.Series) -> bool:
    values = col.dropna().to_numpy(dtype=float)
    return values.size > 0 and bool(np.all(np.isfinite(values))) and bool(np.all(values == np.round(values)))


def readable(df: pd.DataFrame, digits: int = 1) -> pd.DataFrame:
    """A copy of `df` for reading.

    - `value` / `difference` with `ci_low` and `ci_high` become one column "value [95% CI]" ("61.2 [58.1, 64.3]";
      a summary's fractions shown in %, a claim table's points as they are); a missing value reads "collapsed".
    - Float columns whose values are all whole numbers become integers (counts that pandas stored as floats).
    - Other float columns are rounded to `digits` (pass more digits for probabilities such as P(yes) spreads).
    """
    out = df.copy()
    for name, scale in _ESTIMATES:
        if {name, "ci_low", "ci_high"} <= set(out.columns):
            cells = [format_cell(v, lo, hi, scale) for v, lo, hi in zip(out[name], out["ci_low"], out["ci_high"])]
            at = out.columns.get_loc(name)
            out = out.drop(columns=[name, "ci_low", "ci_high"])
            out.insert(at, f"{name} [95% CI]", cells)
            break
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].astype("Int64") if _is_whole(out[col]) else out[col].round(digits)
    return out
