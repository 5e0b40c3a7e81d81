"""One experiment: a preset on a data root, its training runs and its per-item evaluations, all cached.

    exp = Experiment(preset="toy", cache_dir="cache", seeds=(0, 1, 2))
    items = exp.per_item("velociti", "haca", seed=0)      # trains haca/seed 0 if needed, scores, caches the CSV

Every notebook builds the same `Experiment` from its parameters, so `haca reproduce` trains each run once and
scores each (run, benchmark) once, whichever notebook asks first. Rows: `pretrained` (the base model, no
fine-tuning seed) and one per objective (entail, haca, haca_mask), each with every seed.

The data root is the user's real data for the paper preset, the toy world (built once under the cache) otherwise
(`data_root_for`). A preset is configuration, not a fork.

May import: every stage below it (`hacalib.toyworld`, `hacalib.models`, `hacalib.training`, `hacalib.scoring`) and
`hacalib.presets`; imported by `hacalib.notebook` and the notebooks.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from . import prompts
from .config import DEFAULT_MASK_RATIO, OBJECTIVES
from .data.layout import DataRoot
from .io import atomic_path, write_json
from .presets import Preset
from .presets import preset as get_preset

OBJECTIVE_ROWS = OBJECTIVES  # the table rows after "pretrained"
BENCHMARKS = ("velociti", "videocon", "ssv2", "qa", "corrections", "videocon_loglik")


def world_size(smoke: bool) -> str:
    return "smoke" if smoke else "default"


def ensure_world(cache_dir: str | Path, *, smoke: bool, seed: int = 0) -> Path:
    """Build (or reuse) the toy world under `cache_dir/toyworld/<size>-seed<seed>` and return its data root."""
    from .toyworld import build_world

    out = Path(cache_dir) / "toyworld" / f"{world_size(smoke)}-seed{seed}"
    build_world(out, size=world_size(smoke), seed=seed)  # a complete world with the same config is not rebuilt
    return out


def data_root_for(preset: str, data_root: str | Path, cache_dir: str | Path, *, smoke: bool,
                  world_seed: int = 0) -> DataRoot:
    """The data root a notebook reads: the user's real data for the paper preset, the toy world otherwise."""
    if preset == "toy":
        return DataRoot(ensure_world(cache_dir, smoke=smoke, seed=world_seed))
    if not data_root:
        raise ValueError(f"preset {preset!r} needs data_root: a folder laid out as in the README")
    root = DataRoot(data_root)
    if not root.path.is_dir():
        raise FileNotFoundError(f"data_root {root.path} does not exist")
    return root


@dataclass
class Experiment:
    preset: str = "toy"  # 'toy' or 'videollava-7b'
    data_root: str = ""  # the paper preset's data; empty for the toy world
    cache_dir: str = "cache"  # toy world, base model, runs and per-item results
    seeds: tuple = (0, 1, 2)  # fine-tuning seeds
    smoke: bool = False  # tiny world, steps and evaluation (tests)
    world_seed: int = 0  # toy world seed
    progress: bool = False  # progress bars while training
    _models: dict = field(default_factory=dict, repr=False)

    @property
    def config(self) -> Preset:
        return get_preset(self.preset, smoke=self.smoke)

    @property
    def root(self) -> DataRoot:
        return data_root_for(self.preset, self.data_root, self.cache_dir, smoke=self.smoke,
                                      world_seed=self.world_seed)

    @property
    def tag(self) -> str:
        return f"{self.preset}-{'smoke' if self.smoke else 'full'}-world{self.world_seed}"

    def tagger(self):
        """The masking task's tagger for this data root (toy grammar's word classes, else spaCy's)."""
        from .training.masking import tagger_for

        return tagger_for(self.root.path)

    # ------------------------------------------------------------------ models
    def base_model(self) -> str | Path:
        """The pretrained model: trained here for the toy preset (cached), the hub model for the paper."""
        cfg = self.config
        if cfg.pretrain is None:
            return cfg.base_model
        from .training.pretrain import pretrain_toy_model

        out = Path(self.cache_dir) / "models" / f"toy-base-{self.tag}-seed{cfg.pretrain.seed}"
        return pretrain_toy_model(self.root.path, out, cfg.pretrain, progress=self.progress)

    def run_name(self, objective: str, seed: int, mask_ratio: float | None = None) -> str:
        ratio = DEFAULT_MASK_RATIO if mask_ratio is None else mask_ratio
        suffix = f"-mask{round(ratio * 100):02d}" if objective == "haca_mask" else ""
        return f"{objective}{suffix}-seed{seed}"

    def finetuned(self, objective: str, seed: int, mask_ratio: float | None = None, **overrides: Any) -> Path:
        """Train (or reuse) the adapter of one run; `overrides` change TrainConfig fields (e.g. loss_reduction)."""
        from .training.finetune import finetune

        cfg = self.config
        ratio = DEFAULT_MASK_RATIO if mask_ratio is None else mask_ratio
        train_cfg = replace(cfg.finetune, objective=objective, seed=seed, mask_ratio=ratio, **overrides)
        name = self.run_name(objective, seed, mask_ratio) + "".join(f"-{k}={v}" for k, v in sorted(overrides.items()))
        out = Path(self.cache_dir) / "runs" / self.tag / name
        return finetune(self.base_model(), self.root, train_cfg, cfg.model, out, tagger=self.tagger(),
                        progress=self.progress, duplicates=cfg.duplicates, missing_videos=cfg.missing_videos)

    def run_dir(self, row: str, seed: int, mask_ratio: float | None = None, **overrides: Any) -> Path | None:
        return None if row == "pretrained" else self.finetuned(row, seed, mask_ratio, **overrides)

    def model(self, row: str, seed: int = 0, mask_ratio: float | None = None, **overrides: Any):
        """(model, processor) of a row: the base model, or the base model + that run's adapter (kept in memory)."""
        key = (row, seed, mask_ratio, tuple(sorted(overrides.items())))
        if key not in self._models:
            from .models import load_model
            from .training.finetune import load_finetuned

            base = self.base_model()
            dtype = self.config.model.dtype
            if row == "pretrained":
                self._models[key] = load_model(base, dtype=dtype)
            else:
                self._models[key] = load_finetuned(base, self.finetuned(row, seed, mask_ratio, **overrides), dtype=dtype)
            self._move(self._models[key][0])
        return self._models[key]

    @staticmethod
    def _move(model) -> None:
        import torch

        if torch.cuda.is_available():
            model.to("cuda")

    def _base_results_dir(self) -> Path:
        """Where the pretrained row's results go: inside a toy model folder, or a cache folder for a hub model."""
        base = Path(str(self.base_model()))
        return base if base.is_dir() else Path(self.cache_dir) / "models" / "hub" / _slug(str(base))

    def runs(self, rows: tuple = ("pretrained", *OBJECTIVE_ROWS)) -> list[tuple[str, int]]:
        """Every (row, seed): the pretrained model once (seed 0), each objective with every seed."""
        return [(r, s) for r in rows for s in ([0] if r == "pretrained" else list(self.seeds))]

    # ------------------------------------------------------------------ evaluation
    def per_item(self, benchmark: str, row: str, seed: int = 0, mask_ratio: float | None = None,
                 **overrides: Any) -> pd.DataFrame:
        """Per-item results of one run on one benchmark, computed once and cached as CSV beside the run."""
        if benchmark not in BENCHMARKS:
            raise ValueError(f"unknown benchmark {benchmark!r}; known: {', '.join(BENCHMARKS)}")
        where = self.run_dir(row, seed, mask_ratio, **overrides) or self._base_results_dir()
        cfg = self.config
        limits = {"velociti": cfg.velociti_per_test, "videocon": cfg.videocon_heldout, "ssv2": None,
                  "qa": cfg.qa_questions, "corrections": cfg.videocon_heldout, "videocon_loglik": cfg.videocon_heldout}
        # Everything that changes a per-item result: a toy run's folder is already keyed by its configuration, but
        # the pretrained row of a hub model is not, so prompts, model settings and base model enter the key too.
        key = hashlib.sha256(json.dumps([benchmark, limits[benchmark], str(self.root.path), prompts.PROMPT_VERSION,
                                         asdict(cfg.model), str(self.base_model())], default=str).encode()).hexdigest()[:10]
        path = where / "eval" / f"{benchmark}-{key}.csv"
        if path.is_file():
            return pd.read_csv(path, keep_default_na=False, na_values=[""])
        model, processor = self.model(row, seed, mask_ratio, **overrides)
        # P(yes) benchmarks keep their scores per finished video here, so a killed evaluation resumes mid-way
        progress = path.with_name(f".{path.stem}.scores")
        df = self._evaluate(benchmark, model, processor, progress)
        with atomic_path(path) as tmp:
            df.to_csv(tmp, index=False)
        shutil.rmtree(progress, ignore_errors=True)
        # read back: the first call and every cached call then return the very same values
        return pd.read_csv(path, keep_default_na=False, na_values=[""])

    def _evaluate(self, benchmark: str, model, processor, progress: Path) -> pd.DataFrame:
        from .scoring import evaluate  # here, so that resolving a data root (notebook 01) loads no model code

        cfg, root = self.config, self.root
        kw = {"batch_size": cfg.score_batch}
        progress.mkdir(parents=True, exist_ok=True)
        if benchmark == "velociti":
            return evaluate.velociti_items(model, processor, root, limit_per_test=cfg.velociti_per_test,
                                           resume_file=progress / "velociti.csv", **kw)
        if benchmark == "videocon":
            return evaluate.videocon_pairs(model, processor, root, limit=cfg.videocon_heldout,
                                           resume_file=progress / "videocon.csv", **kw)
        if benchmark == "qa":
            return evaluate.qa_answers(model, processor, root, limit=cfg.qa_questions)
        if benchmark == "corrections":
            return evaluate.correction_answers(model, processor, root, limit=cfg.videocon_heldout)
        if benchmark == "videocon_loglik":
            return evaluate.videocon_loglik(model, processor, root, limit=cfg.videocon_heldout, **kw)
        frames = []
        for name in root.ssv2_names():
            matrix, scores = evaluate.retrieval_scores(model, processor, root, name,
                                                       resume_file=progress / f"ssv2_{name}.csv", **kw)
            long = pd.DataFrame(scores, index=list(matrix.queries), columns=list(matrix.videos)).stack()
            match = pd.DataFrame(matrix.match, index=list(matrix.queries), columns=list(matrix.videos)).stack()
            frames.append(pd.DataFrame({"benchmark": name, "query": long.index.get_level_values(0),
                                        "video": long.index.get_level_values(1), "p_yes": long.to_numpy(),
                                        "match": match.to_numpy().astype(int)}))
        return pd.concat(frames, ignore_index=True)

    def collect(self, benchmark: str, runs: list[tuple[str, int]] | None = None,
                log: Callable[[str], None] | None = None) -> dict[tuple[str, int], pd.DataFrame]:
        """Per-item frames of every run (training and scoring what the cache lacks)."""
        out = {}
        for row, seed in runs or self.runs():
            if log:
                log(f"{benchmark}: {row} seed {seed}")
            out[(row, seed)] = self.per_item(benchmark, row, seed)
        return out

    def describe(self) -> dict:
        cfg = self.config
        return {"preset": self.preset, "smoke": self.smoke, "seeds": list(self.seeds), "world_seed": self.world_seed,
                "data_root": str(self.root.path), "model": cfg.model, "finetune": cfg.finetune,
                "pretrain": cfg.pretrain, "base_model": str(self.base_model()),
                "limits": {"velociti_per_test": cfg.velociti_per_test, "videocon_heldout": cfg.videocon_heldout,
                           "qa_questions": cfg.qa_questions}}


def retrieval_matrices(frame: pd.DataFrame) -> dict[str, tuple]:
    """benchmark -> (scores, match, queries, videos) from `per_item('ssv2', ...)`'s long frame."""
    out = {}
    for name, df in frame.groupby("benchmark", sort=False):
        scores = df.pivot(index="query", columns="video", values="p_yes")
        match = df.pivot(index="query", columns="video", values="match")
        queries = list(dict.fromkeys(df["query"]))
        videos = sorted(dict.fromkeys(df["video"]))
        out[name] = (scores.loc[queries, videos].to_numpy(), match.loc[queries, videos].to_numpy().astype(bool),
                     queries, videos)
    return out


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def save_experiment_record(exp: Experiment, path: str | Path) -> Path:
    return write_json(path, exp.describe())
