"""Real data samples shipped with hacalib (VideoCon rows, the SSv2-Temporal matrix and VideoCon's scores for it).

Unmodified copies of MIT-licensed VideoCon data; `ORIGIN.md` says where each file comes from and how it was cut,
`LICENSE` carries VideoCon's licence. Notebooks 01 and 04 and the tests read them, so every clone sees real data.

May import: nothing from hacalib.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

SAMPLES = Path(str(files(__name__)))
VIDEOCON_SAMPLE = SAMPLES / "videocon" / "videocon_llm_entailment_train_sample.csv"
SSV2_TEMPORAL_MATRIX = SAMPLES / "ssv2_temporal" / "eval_ssv2_temporal.csv"
SSV2_TEMPORAL_SCORES = SAMPLES / "ssv2_temporal" / "eval_ssv2_temporal_scores.csv"

__all__ = ["SAMPLES", "SSV2_TEMPORAL_MATRIX", "SSV2_TEMPORAL_SCORES", "VIDEOCON_SAMPLE"]
