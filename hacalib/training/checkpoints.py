"""Training checkpoints: written whole or not at all, read back without unpickling anything of ours.

Checkpoints (`output_dir/checkpoints/step_NNNNNNNN`) hold the trainable weights (safetensors), the optimizer
and every process's RNG state (accelerate's `save_state`; it reads them back with `weights_only=True`), and
`training_state.json`: the step (the data position: the sampler is a function of it), the configuration and
the LR scheduler's state, as JSON so that resuming unpickles nothing of ours (accelerate's custom objects are
pickles that would be unpickled without the weights-only guard). They are written into a hidden `.partial`
folder and renamed when complete, so a folder with the final name is always whole; resume takes the newest one.

May import: torch, accelerate, safetensors, `hacalib.config`, `hacalib.errors`, `hacalib.io`.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import OrderedDict
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ..config import TrainConfig, result_neutral_fields
from ..errors import DataError
from ..io import read_json, write_text

CHECKPOINT_RE = re.compile(r"^step_(\d{8})$")
TRAINING_STATE = "training_state.json"  # in each checkpoint: step, resume key (config), scheduler state


def save_checkpoint(accelerator: Any, ckpt_root: Path, step: int, state: dict, keep: int = 2) -> Path:
    """Write a complete checkpoint for `step` (all processes call this) and keep the newest `keep`.

    Args:
        accelerator: the run's accelerator (`save_state` writes weights, optimizer and RNG states).
        ckpt_root: the checkpoints folder.
        step: the optimizer step just finished.
        state: the training state written as `training_state.json`, plain JSON: {"step", "config",
            "scheduler"} (see `read_training_state`).
        keep: complete checkpoints kept (the newest; 0 keeps all).
    """
    final = ckpt_root / f"step_{step:08d}"
    partial = ckpt_root / f".step_{step:08d}.partial"
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)  # left by a run killed while saving
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    if accelerator.is_main_process:
        # no default=str: a scheduler state that is not plain JSON must fail here, not come back altered
        text = json.dumps(state, indent=2, sort_keys=True, allow_nan=False)
        write_text(partial / TRAINING_STATE, text + "\n")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        replace_dir(partial, final)
        for old in _checkpoints(ckpt_root)[:-keep] if keep > 0 else []:
            doomed = old.with_name(f".{old.name}.deleting")  # never leave a half-deleted step_ folder
            old.rename(doomed)
            shutil.rmtree(doomed)
    accelerator.wait_for_everyone()
    return final


def latest_checkpoint(ckpt_root: str | Path) -> Path | None:
    """The newest complete checkpoint folder under `ckpt_root`, or None."""
    found = _checkpoints(Path(ckpt_root))
    return found[-1] if found else None


def _checkpoints(ckpt_root: Path) -> list[Path]:
    if not ckpt_root.is_dir():
        return []
    return sorted(p for p in ckpt_root.iterdir() if p.is_dir() and CHECKPOINT_RE.match(p.name))


def replace_dir(src: Path, dst: Path) -> None:
    """Move a finished folder into place; an older `dst` is moved aside first, then removed."""
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        dst.rename(old)
        src.rename(dst)
        shutil.rmtree(old)
    else:
        src.rename(dst)


def keep_trainable(models: list[torch.nn.Module], weights: list[dict]) -> None:
    for i, (model, sd) in enumerate(zip(models, weights)):
        names = {n for n, p in model.named_parameters() if p.requires_grad}
        weights[i] = OrderedDict((k, v) for k, v in sd.items() if k in names)


def resume_key(cfg: TrainConfig) -> dict:
    """The configuration a checkpoint must match to be resumed: every field but those that cannot change the result."""
    neutral = result_neutral_fields(TrainConfig)
    return {k: v for k, v in asdict(cfg).items() if k not in neutral}


def check_checkpoint(ckpt: Path, trainable: set[str]) -> None:
    """Refuse a checkpoint whose weights do not match the model's trainable parameters."""
    weights = ckpt / "model.safetensors"
    if not weights.is_file():  # FSDP / DeepSpeed write their own layouts
        return
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as f:
        saved = set(f.keys())
    if saved != trainable:
        extra, missing = sorted(saved - trainable), sorted(trainable - saved)
        key = (extra or missing)[0]
        raise DataError(weights, f"checkpoint does not match the model: {len(extra)} unexpected and {len(missing)} missing trainable weights", key=key)


def read_training_state(ckpt: str | Path) -> dict:
    """A checkpoint's `training_state.json`: {"step": int, "config": dict, "scheduler": dict}."""
    path = Path(ckpt) / TRAINING_STATE
    if not path.is_file() and any(Path(ckpt).glob("custom_checkpoint_*.pkl")):
        raise DataError(path, "checkpoint written by an older hacalib (pickled training state, not loaded for "
                        "safety); use a new output_dir or resume=False")
    state = read_json(path)
    kinds = {"step": int, "config": dict, "scheduler": dict}
    if not isinstance(state, dict):
        raise DataError(path, "training state is not a JSON object")
    for key, kind in kinds.items():
        if not isinstance(state.get(key), kind) or isinstance(state.get(key), bool):
            raise DataError(path, f"training state lacks {key!r} or it is not a {kind.__name__}", key=key)
    return state


def check_rng_restored(ckpt: Path, process_index: int) -> None:
    """accelerate's `load_state` only logs when it cannot read a process's RNG states; a resume without them
    would silently diverge (dropout), so compare the torch RNG with the saved one (read with weights_only)."""
    from accelerate.utils import load

    path = ckpt / f"random_states_{process_index}.pkl"
    try:
        saved = load(path, weights_only=True)["torch_manual_seed"]
    except Exception as exc:
        raise DataError(path, f"RNG states unreadable ({exc})") from exc
    if not torch.equal(saved, torch.get_rng_state()):
        raise DataError(path, "RNG states were not restored by accelerate's load_state")


def check_config(ckpt: Path, saved: dict, current: dict) -> None:
    for key in sorted(set(saved) | set(current)):
        if saved.get(key) != current.get(key):
            raise DataError(ckpt, f"checkpoint was trained with {key}={saved.get(key)!r}, config now says {current.get(key)!r}; use a new output_dir or resume=False", key=key)

