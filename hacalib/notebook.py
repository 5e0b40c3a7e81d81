"""What every notebook does first: quiet logging, a `Study` (one `Experiment` per model family) from the parameters
cell, a provenance record.

May import: `hacalib.study`, `hacalib.experiment`, `hacalib.prompts`, `hacalib.report`.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

# tqdm.auto warns once, at import, that Jupyter widgets are missing; the text bar it falls back to is fine.
warnings.filterwarnings("ignore", message="IProgress not found")

from .prompts import entail_option
from .report.provenance import provenance
from .study import Study


def prompt_record(prompt: str) -> dict:
    """The entailment question a notebook evaluates with, for its provenance: option, version and source."""
    option = entail_option(prompt)
    return {"name": option.name, "version": option.version, "source": option.source}


def quiet() -> None:
    """Hide per-call progress bars and advisory warnings that would flood notebook outputs (not errors)."""
    import logging

    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    logging.getLogger("accelerate").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module="transformers")
    warnings.filterwarnings("ignore", category=FutureWarning)
    whole_text()


def whole_text() -> None:
    """Tables show their text whole: pandas cuts it at 50 characters by default, often just before the changed word
    of a caption or the reason of a verdict."""
    import pandas as pd

    pd.set_option("display.max_colwidth", None)


# What each notebook parameter must be: papermill injects whatever JSON it is given ("0,1" for a list of seeds, 1 for
# a flag), so each is checked before any work. "ints" is a list of whole numbers or None (the preset's).
PARAMETER_KINDS = {"preset": "str", "data_root": "str", "cache_dir": "str", "model_path": "str", "prompt": "str",
                   "accelerate_config": "str", "seeds": "ints", "base_seeds": "ints", "families": "strs",
                   "smoke": "bool", "retrain_base": "bool", "world_seed": "int", "num_processes": "int", "seed": "int",
                   "base": "int"}


def check_parameters(**values: Any) -> None:
    """A UsageError naming the first notebook parameter whose value is of the wrong kind (`PARAMETER_KINDS`)."""
    from .errors import UsageError

    def whole(v):
        return isinstance(v, int) and not isinstance(v, bool)

    ok = {"str": lambda v: isinstance(v, str), "bool": lambda v: isinstance(v, bool), "int": whole,
          "ints": lambda v: v is None or (isinstance(v, (list, tuple)) and all(whole(x) for x in v)),
          "strs": lambda v: v is None or (isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v))}
    words = {"str": "a string", "bool": "true or false", "int": "a whole number",
             "ints": "a list of whole numbers (or None for the preset's)", "strs": "a list of names (or None)"}
    for name, value in values.items():
        kind = PARAMETER_KINDS.get(name)
        if kind and not ok[kind](value):
            raise UsageError(f"notebook parameter {name} must be {words[kind]}, got {value!r}")


def setup(notebook: str, *, preset: str, data_root: str, cache_dir: str, seeds: Sequence[int] | None, smoke: bool,
          world_seed: int = 0, base_seeds: Sequence[int] | None = None, retrain_base: bool = False,
          prompt: str = "haca", num_processes: int = 1, accelerate_config: str = "",
          families: Sequence[str] | None = None, model_path: str = "", **extra: Any) -> tuple[Study, dict]:
    """The notebook's study (one experiment per model family: `families`, None for all the preset's) and the
    provenance record every artifact it writes carries. Seeds left as None are the preset's; the record holds the
    ones used. `model_path`: a paper preset's model folder (VideoChat2: what `haca convert-videochat2` wrote).
    `prompt`: the entailment question at evaluation
    (`hacalib.prompts.ENTAIL_PROMPTS`), recorded with its version. `num_processes` > 1 runs each fine-tuning run
    and evaluation in that many processes under `accelerate launch` (with `accelerate_config`, if given); the
    record names them then (per-item results equal one process's; fine-tuning runs share each step's examples,
    not its floats)."""
    import pandas as pd

    check_parameters(preset=preset, data_root=data_root, cache_dir=cache_dir, seeds=seeds, smoke=smoke,
                     world_seed=world_seed, base_seeds=base_seeds, retrain_base=retrain_base, prompt=prompt,
                     num_processes=num_processes, accelerate_config=accelerate_config, families=families,
                     model_path=model_path, **extra)
    quiet()  # text shown whole (`whole_text`)
    pd.set_option("display.width", 200)
    study = Study.of(preset=preset, families=families, data_root=data_root, cache_dir=cache_dir,
                     seeds=None if seeds is None else tuple(seeds), smoke=smoke, world_seed=world_seed,
                     base_seeds=None if base_seeds is None else tuple(base_seeds), retrain_base=retrain_base,
                     prompt=prompt, num_processes=num_processes, accelerate_config=accelerate_config,
                     model_path=model_path)
    launch = {"num_processes": num_processes, **({"accelerate_config": accelerate_config} if accelerate_config else {})}
    exp = study.first
    chosen = {"model_path": model_path} if model_path else {}
    prov = provenance({"preset": preset, "families": study.families, **chosen,
                       "smoke": smoke, "base_seeds": list(exp.base_seeds), "seeds": list(exp.seeds),
                       "retrain_base": retrain_base, "world_seed": world_seed, "entail_prompt": prompt_record(prompt),
                       "data_root": data_root or "(toy world)", **(launch if num_processes > 1 else {}), **extra},
                      notebook=notebook)
    return study, prov


def show(df, digits: int = 1) -> None:
    """Display a table for reading (`hacalib.report.readable`): estimates with their CIs in one cell, `digits`
    decimals, integers as integers. The CSVs under figures/ keep full precision."""
    from IPython.display import display

    from .report.readable import readable

    display(readable(df, digits))


def attach_run_config(prov: dict, study: Study) -> dict:
    """Add each family's full configuration (model, training, limits, base models) to a provenance record."""
    from dataclasses import asdict, is_dataclass

    from .report.provenance import redact

    def plain(desc: dict) -> dict:
        return redact({k: asdict(v) if is_dataclass(v) else v for k, v in desc.items()})

    return {**prov, "experiments": {family: plain(exp.describe()) for family, exp in study.items()}}
