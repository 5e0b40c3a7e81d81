"""What every notebook does first: quiet logging, an `Experiment` from the parameters cell, a provenance record.

May import: `hacalib.experiment`, `hacalib.report`.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

# tqdm.auto warns once, at import, that Jupyter widgets are missing; the text bar it falls back to is fine.
warnings.filterwarnings("ignore", message="IProgress not found")

from .experiment import Experiment
from .report.provenance import provenance


def quiet() -> None:
    """Hide per-call progress bars and advisory warnings that would flood notebook outputs (not errors)."""
    import logging

    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    logging.getLogger("accelerate").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module="transformers")
    warnings.filterwarnings("ignore", category=FutureWarning)


def setup(notebook: str, *, preset: str, data_root: str, cache_dir: str, seeds: Sequence[int], smoke: bool,
          world_seed: int = 0, **extra: Any) -> tuple[Experiment, dict]:
    """The notebook's experiment and the provenance record every artifact it writes carries."""
    import pandas as pd

    quiet()
    pd.set_option("display.max_colwidth", 120)
    pd.set_option("display.width", 200)
    exp = Experiment(preset=preset, data_root=data_root, cache_dir=cache_dir, seeds=tuple(seeds), smoke=smoke,
                     world_seed=world_seed)
    prov = provenance({"preset": preset, "smoke": smoke, "seeds": list(seeds), "world_seed": world_seed,
                       "data_root": data_root or "(toy world)", **extra}, notebook=notebook)
    return exp, prov


def attach_run_config(prov: dict, exp: Experiment) -> dict:
    """Add the experiment's full configuration (model, training, limits, base model) to a provenance record."""
    from dataclasses import asdict, is_dataclass

    from .report.provenance import redact

    desc = exp.describe()
    return {**prov, "experiment": redact({k: asdict(v) if is_dataclass(v) else v for k, v in desc.items()})}
