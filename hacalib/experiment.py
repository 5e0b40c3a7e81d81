"""One experiment: a preset on a data root, its training runs and its per-item evaluations, all cached.

    exp = Experiment(preset="toy", cache_dir="cache")             # the preset's base and fine-tuning seeds
    items = exp.per_item("velociti", "haca", seed=0, base=1)      # trains haca/seed 0 on base model 1 if needed
    chat2 = Experiment(preset="toy", family="videochat2")         # the same on the toy VideoChat2

Every notebook builds the same `Experiment` from its parameters, so `haca reproduce` trains each run once and
scores each (run, benchmark) once, whichever notebook asks first. A run is (row, base, seed): rows `pretrained`
(the base model itself, one run per base model) and one per objective (entail, haca, haca_mask), each fine-tuned
with every seed on every base model. Toy base models are the pretraining seeds `base_seeds`; the shipped ones
(`hacalib.training.bases`) are used when they fit the world and recipe, else (or with `retrain_base`) they are
pretrained here.

The data root is the user's real data for the paper preset, the toy world (built once under the cache) otherwise
(`data_root_for`). A preset is configuration, not a fork.

With `num_processes` > 1 (every GPU of a node) the work starts here but runs in that many processes under
`accelerate launch` (`hacalib.launch`): fine-tuning through `hacalib.training.cli`, evaluation through
`hacalib.shard_cli` (each process scores its share of the videos); the kernel reads the result as a one-process one.

May import: every stage below it (`hacalib.toyworld`, `hacalib.models`, `hacalib.training`, `hacalib.scoring`),
`hacalib.presets` and `hacalib.launch`; imported by `hacalib.notebook`, `hacalib.shard_cli` and the notebooks.
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
from .config import DEFAULT_MASK_RATIO, OBJECTIVES, TrainConfig
from .data.layout import DataRoot
from .presets import PRESET_FAMILIES, Preset, family_slug
from .presets import preset as get_preset
from .scoring.cached_results import cached_results, write_results

OBJECTIVE_ROWS = OBJECTIVES  # the table rows after "pretrained"
# the perception readouts: caption log-likelihood, own video against another (`hacalib.report.perception`)
READOUT_BENCHMARKS = ("videocon_loglik", "velociti_loglik", "ssv2_loglik")
BENCHMARKS = ("velociti", "videocon", "ssv2", "qa", "corrections", *READOUT_BENCHMARKS)
ENTAIL_BENCHMARKS = prompts.ENTAIL_BENCHMARKS  # the ones that ask the entailment question


def world_size(smoke: bool) -> str:
    return "smoke" if smoke else "default"


def world_dir(cache_dir: str | Path, *, smoke: bool, seed: int = 0) -> Path:
    """Where the toy world of this size and seed lives under the cache (nothing is built)."""
    return Path(cache_dir) / "toyworld" / f"{world_size(smoke)}-seed{seed}"


def ensure_world(cache_dir: str | Path, *, smoke: bool, seed: int = 0) -> Path:
    """Build (or reuse) the toy world under `cache_dir/toyworld/<size>-seed<seed>` and return its data root."""
    from .toyworld import build_world

    out = world_dir(cache_dir, smoke=smoke, seed=seed)
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
    preset: str = "toy"  # 'toy', 'videollava-7b' or 'videochat2-7b' (`hacalib.presets.PRESETS`)
    data_root: str = ""  # the paper preset's data; empty for the toy world
    cache_dir: str = "cache"  # toy world, base models, runs and per-item results
    seeds: tuple | None = None  # fine-tuning seeds on every base model (None: the preset's)
    smoke: bool = False  # tiny world, steps and evaluation (tests)
    world_seed: int = 0  # toy world seed
    progress: bool = False  # progress bars while training
    base_seeds: tuple | None = None  # base models: the toy pretraining seeds (None: the preset's)
    retrain_base: bool = False  # toy: pretrain the base models here even where a shipped one fits
    prompt: str = prompts.DEFAULT_ENTAIL_PROMPT  # entailment question at evaluation (`prompts.ENTAIL_PROMPTS`)
    num_processes: int = 1  # > 1: training and evaluation run in this many processes under `accelerate launch`
    accelerate_config: str = ""  # an accelerate config file for those launches (FSDP, DeepSpeed, GPU subset)
    family: str = ""  # the model family ('video_llava', 'videochat2'); empty: the preset's first
    model_path: str = ""  # paper preset: the model's folder or hub id instead of the preset's (VideoChat2: required)
    _models: Any = field(default=None, repr=False)  # `hacalib.models.LoadedModels`, made on first use
    _videos: Any = field(default=None, repr=False)  # `hacalib.models.VideoStore` when the preset keeps videos
    _root: DataRoot | None = field(default=None, repr=False)
    _shard: Any = field(default=None, repr=False)  # this process's share when it is one of the launched ones
    _device: Any = field(default=None, repr=False)  # where its models go then (accelerate's device for this rank)

    def __post_init__(self) -> None:
        cfg = self.config
        self.family = cfg.family
        self.seeds = tuple(cfg.seeds if self.seeds is None else self.seeds)
        self.base_seeds = tuple(cfg.base_seeds if self.base_seeds is None else self.base_seeds)
        for name, values in (("seeds", self.seeds), ("base_seeds", self.base_seeds)):
            if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in values) \
                    or len(set(values)) != len(values):
                raise ValueError(f"{name} must be distinct non-negative integers, got {list(values)}")
        from .models import get_family

        prompts.with_entail_prompt(get_family(self.family).template, self.prompt)  # unknown, or not this family's
        if self.prompt != prompts.DEFAULT_ENTAIL_PROMPT and cfg.pretrain is not None:
            # the toy tokenizer knows only the words of our own templates: another wording would be mostly <unk>
            raise ValueError(f"prompt {self.prompt!r} needs the real model's tokenizer; the toy preset's vocabulary "
                             f"holds only the words of {prompts.DEFAULT_ENTAIL_PROMPT!r}'s templates")
        from .launch import check_launch_settings

        check_launch_settings(self.num_processes, self.accelerate_config)
        if cfg.pretrain is not None and self.model_path:
            raise ValueError(f"model_path is for a paper preset; preset {self.preset!r} builds its own base models")
        if cfg.pretrain is None and not (self.model_path or cfg.base_model):
            raise ValueError(f"preset {self.preset!r} needs model_path: the folder `haca convert-videochat2` wrote "
                             "from the original checkpoints (docs/videochat2.md)")
        if cfg.pretrain is None and self.base_seeds != (0,):
            raise ValueError(f"preset {self.preset!r} has one base model (the hub model): base_seeds must be [0], "
                             f"got {list(self.base_seeds)}")

    @property
    def config(self) -> Preset:
        return get_preset(self.preset, smoke=self.smoke, family=self.family or None)

    @property
    def root(self) -> DataRoot:
        # resolved once per experiment: checking a toy world against its manifest hashes every file (~0.6 s)
        if self._root is None:
            self._root = data_root_for(self.preset, self.data_root, self.cache_dir, smoke=self.smoke,
                                       world_seed=self.world_seed)
        return self._root

    @property
    def root_path(self) -> Path:
        """The data root's folder, without building or checking it (`root` does both)."""
        if self.preset == "toy":
            return world_dir(self.cache_dir, smoke=self.smoke, seed=self.world_seed)
        return Path(self.data_root)

    @property
    def tag(self) -> str:
        # a preset's first family keeps the folder names it had before there were two
        other = "" if self.family == PRESET_FAMILIES[self.preset][0] else f"-{family_slug(self.family)}"
        return f"{self.preset}-{'smoke' if self.smoke else 'full'}-world{self.world_seed}{other}"

    def _base(self, base: int | None) -> int:
        """The base seed a call means: the first of `base_seeds` when not given."""
        return self.base_seeds[0] if base is None else base

    def base_tag(self, base: int | None = None) -> str:
        """Names one base model in cache paths (a retrained toy base never shares a folder with a shipped one)."""
        return f"{self.tag}-base{self._base(base)}" + ("-retrained" if self.retrain_base else "")

    def tagger(self):
        """The masking task's tagger for this data root (toy grammar's word classes, else spaCy's)."""
        from .training.masking import tagger_for

        return tagger_for(self.root.path)

    # ------------------------------------------------------------------ models
    def base_path(self, base: int | None = None) -> str | Path:
        """Where base model `base` is or will be (toy), or the hub model (paper preset); nothing is made."""
        cfg = self.config
        if cfg.pretrain is None:
            return self.model_path or cfg.base_model
        return Path(self.cache_dir) / "models" / f"toy-base-{self.base_tag(self._base(base))}"

    def base_model(self, base: int | None = None) -> str | Path:
        """A base model: the toy one of pretraining seed `base` (shipped or trained here, cached), the hub model for
        the paper preset."""
        cfg = self.config
        if cfg.pretrain is None:
            return self.model_path or cfg.base_model
        from .training.bases import install_shipped_base
        from .training.pretrain import cache_key, is_pretrained, pretrain_toy_model

        base = self._base(base)
        pretrain = replace(cfg.pretrain, seed=base)
        out = Path(self.base_path(base))
        key = cache_key(pretrain, self.root.path)
        if not self.retrain_base and not is_pretrained(out, key):
            # False (and pretraining below) when no shipped base fits
            install_shipped_base(base, key, out, family=family_slug(self.family))
        return pretrain_toy_model(self.root.path, out, pretrain, progress=self.progress)

    def run_name(self, objective: str, seed: int, mask_ratio: float | None = None) -> str:
        ratio = DEFAULT_MASK_RATIO if mask_ratio is None else mask_ratio
        suffix = f"-mask{round(ratio * 100):02d}" if objective == "haca_mask" else ""
        return f"{objective}{suffix}-seed{seed}"

    def train_config(self, objective: str, seed: int, mask_ratio: float | None = None, **overrides: Any):
        """The TrainConfig of one run: the preset's, with the run's objective, seed, mask ratio and overrides."""
        ratio = DEFAULT_MASK_RATIO if mask_ratio is None else mask_ratio
        return replace(self.config.finetune, objective=objective, seed=seed, mask_ratio=ratio, **overrides)

    def run_path(self, objective: str, seed: int, mask_ratio: float | None = None, *, base: int | None = None,
                 **overrides: Any) -> Path:
        """The folder of one fine-tuning run (finished or not; nothing is trained)."""
        name = self.run_name(objective, seed, mask_ratio) + "".join(f"-{k}={v}" for k, v in sorted(overrides.items()))
        return Path(self.cache_dir) / "runs" / self.base_tag(base) / name

    def finetuned(self, objective: str, seed: int, mask_ratio: float | None = None, *, base: int | None = None,
                  **overrides: Any) -> Path:
        """Train (or reuse) the adapter of one run on base model `base`; `overrides` change TrainConfig fields
        (e.g. loss_reduction)."""
        from .training.finetune import finetune

        cfg = self.config
        train_cfg = self.train_config(objective, seed, mask_ratio, **overrides)
        out = self.run_path(objective, seed, mask_ratio, base=base, **overrides)
        base_model = self.base_model(base)
        if cfg.models_in_memory is not None and self._models and not self.is_trained(train_cfg, base_model, out):
            self._models.release(keep=0)  # training needs the GPU memory the evaluated models hold
        if self.num_processes > 1 and self._shard is None:
            from .launch import launch_training

            launch_training(self, base_model, train_cfg, out)
        # finished by the launch (or earlier): returned as it is, exactly as after an in-process run
        return finetune(base_model, self.root, train_cfg, cfg.model, out, tagger=self.tagger(),
                        progress=self.progress, duplicates=cfg.duplicates, missing_videos=cfg.missing_videos,
                        video_store=self.video_store)

    def is_trained(self, train_cfg: TrainConfig, base_model: str | Path, out: Path) -> bool:
        """Whether `out` holds the finished run of `train_cfg` on `base_model` (nothing is trained)."""
        from .training.finetune import cache_key, is_finished

        cfg = self.config
        return is_finished(out, cache_key(train_cfg, cfg.model, base_model, self.root, duplicates=cfg.duplicates,
                                          missing_videos=cfg.missing_videos))

    def run_dir(self, row: str, seed: int, mask_ratio: float | None = None, *, base: int | None = None,
                **overrides: Any) -> Path | None:
        return None if row == "pretrained" else self.finetuned(row, seed, mask_ratio, base=base, **overrides)

    def model(self, row: str, seed: int = 0, mask_ratio: float | None = None, *, base: int | None = None,
              **overrides: Any):
        """(model, processor) of a run: a base model, or it + that run's adapter (kept in memory, the preset's
        `models_in_memory` most recently used at most)."""
        from .models import LoadedModels, load_model
        from .training.finetune import load_finetuned

        base = self._base(base)
        key = (row, base, seed, mask_ratio, tuple(sorted(overrides.items())))

        def load():
            path, dtype = self.base_model(base), self.config.model.dtype
            if row == "pretrained":
                pair = load_model(path, dtype=dtype)
            else:
                pair = load_finetuned(path, self.finetuned(row, seed, mask_ratio, base=base, **overrides), dtype=dtype)
            self._move(pair[0])
            return pair

        if self._models is None:
            self._models = LoadedModels()
        return self._models.get(key, load, limit=self.config.models_in_memory)

    @property
    def video_store(self):
        """Processed videos shared by this experiment's runs and evaluations (presets that keep them), else None."""
        if self._videos is None and self.config.keep_videos:
            from .models import VideoStore

            self._videos = VideoStore()
        return self._videos

    def _move(self, model) -> None:
        import torch

        if self._device is not None:  # one of several launched processes: its own GPU (or the CPU)
            model.to(self._device)
        elif torch.cuda.is_available():
            model.to("cuda")

    def _base_results_dir(self, base: int | None = None, *, make: bool = True) -> Path:
        """Where a pretrained row's results go: inside a toy model folder, or a cache folder for a hub model
        (`make=False`: without making the base model)."""
        path = Path(str(self.base_model(base) if make else self.base_path(base)))
        if self.config.pretrain is not None:
            return path
        return path if path.is_dir() else Path(self.cache_dir) / "models" / "hub" / _slug(str(path))

    def eval_limit(self, benchmark: str) -> int | None:
        """How many items of `benchmark` the preset evaluates (None: all)."""
        cfg = self.config
        limits = {"velociti": cfg.velociti_per_test, "videocon": cfg.videocon_heldout, "ssv2": None,
                  "qa": cfg.qa_questions, "corrections": cfg.videocon_heldout}
        return limits[benchmark.removesuffix("_loglik")]  # a readout reads the items of its benchmark

    def eval_file(self, benchmark: str, where: Path, base: int | None = None, *, finetuned: bool = False) -> Path:
        """The cached per-item CSV of one run (results folder `where`; `finetuned`: a fine-tuning run's, not a base
        model's) on one benchmark."""
        # Everything that changes a per-item result: a toy run's folder is already keyed by its configuration, but
        # the pretrained row of a hub model is not, so prompts, model settings and base model enter the key too.
        parts = [benchmark, self.eval_limit(benchmark), str(self.root_path), prompts.PROMPT_VERSION,
                 asdict(self.config.model), str(self.base_path(base))]
        if self.prompt != prompts.DEFAULT_ENTAIL_PROMPT and benchmark in ENTAIL_BENCHMARKS:
            # only a non-default question joins the key, so results made before the options existed stay valid
            parts.append(prompts.entail_option(self.prompt).key)
        if finetuned:
            # a fine-tuned run is evaluated with its adapter merged into the weights (`load_finetuned`), which moves
            # P(yes) by float32 rounding (~1e-6): results made unmerged are not mixed with these
            parts.append("adapter merged")
        key = hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:10]
        return where / "eval" / f"{benchmark}-{key}.csv"

    def runs(self, rows: tuple = ("pretrained", *OBJECTIVE_ROWS)) -> list[tuple[str, int, int]]:
        """Every run (row, base, seed): the pretrained row once per base model (seed 0), each objective with every
        seed on every base model."""
        return [(r, b, s) for r in rows for b in self.base_seeds for s in ([0] if r == "pretrained" else self.seeds)]

    # ------------------------------------------------------------------ evaluation
    def per_item(self, benchmark: str, row: str, seed: int = 0, mask_ratio: float | None = None, *,
                 base: int | None = None, **overrides: Any) -> pd.DataFrame:
        """Per-item results of one run on one benchmark, computed once and cached as CSV beside the run."""
        if benchmark not in BENCHMARKS:
            raise ValueError(f"unknown benchmark {benchmark!r}; known: {', '.join(BENCHMARKS)}")
        where = self.run_dir(row, seed, mask_ratio, base=base, **overrides) or self._base_results_dir(base)
        path = self.eval_file(benchmark, where, base, finetuned=row != "pretrained")
        if (cached := cached_results(benchmark, path)) is not None:  # a file cut short or edited is scored again
            return cached
        # P(yes) and generation benchmarks keep their results per finished video here, so a killed evaluation
        # resumes mid-way
        progress = path.with_name(f".{path.stem}.scores")
        if self.num_processes > 1 and self._shard is None:
            from .launch import launch_evaluation

            launch_evaluation(self, benchmark, row, seed, mask_ratio, base, overrides, path, progress)
        else:
            model, processor = self.model(row, seed, mask_ratio, base=base, **overrides)
            from .scoring.benchmark import evaluate_benchmark  # here: resolving a data root loads no model code

            df = evaluate_benchmark(benchmark, model, processor, self.root, self.config, progress, prompt=self.prompt,
                                    shard=self._shard, video_store=self.video_store)
            if self._shard is not None:
                self._shard.wait()  # every process has read the shares back before the first writes the result
            if self._shard is None or self._shard.rank == 0:
                write_results(df, path)  # with its record (rows, sha256): `cached_results` checks it
            if self._shard is not None:
                self._shard.wait()
                return df  # the launching kernel reads the file and removes the progress folder
        shutil.rmtree(progress, ignore_errors=True)
        # read back: the first call and every cached call then return the very same values
        return cached_results(benchmark, path)

    def launch_fields(self) -> dict:
        """The settings a launched process needs to build this experiment (JSON-ready; one process each)."""
        # paths as this experiment spells them (the processes start in this folder): a result's cache key holds them
        return {"preset": self.preset, "data_root": self.data_root, "cache_dir": str(self.cache_dir),
                "seeds": list(self.seeds), "smoke": self.smoke, "world_seed": self.world_seed, "progress": False,
                "base_seeds": list(self.base_seeds), "retrain_base": self.retrain_base,
                "prompt": self.prompt,  # the entailment question: it changes the scores and the result's key
                "family": self.family, "model_path": self.model_path}

    def as_shard(self, shard, device) -> "Experiment":
        """This experiment as one of several launched processes: `shard` (`hacalib.scoring.shards.Shard`) says
        which share of every evaluation it scores, `device` where its models go."""
        return replace(self, num_processes=1, accelerate_config="", _models=None, _root=None, _shard=shard,
                       _device=device)

    def collect(self, benchmark: str, runs: list[tuple[str, int, int]] | None = None,
                log: Callable[[str], None] | None = None) -> dict[tuple[str, int, int], pd.DataFrame]:
        """Per-item frames of every run (row, base, seed), training and scoring what the cache lacks."""
        out = {}
        for row, base, seed in runs or self.runs():
            if log:
                log(f"{benchmark}: {row} base {base} seed {seed}")
            out[(row, base, seed)] = self.per_item(benchmark, row, seed, base=base)
        return out

    def describe(self) -> dict:
        from .models import MODELS, get_family

        cfg = self.config
        spec = MODELS.get(str(cfg.base_model)) if cfg.pretrain is None else None
        hub = {"hub_model": {"id": spec.name_or_path, "revision": spec.revision}} if spec else {}
        return {"preset": self.preset, "family": self.family, "smoke": self.smoke, "seeds": list(self.seeds), **hub,
                "entail_prompt": prompts.entail_option(self.prompt).key,
                "chat_template": asdict(prompts.with_entail_prompt(get_family(self.family).template, self.prompt)),
                "base_seeds": list(self.base_seeds), "retrain_base": self.retrain_base, "world_seed": self.world_seed,
                "data_root": str(self.root.path), "model": cfg.model, "finetune": cfg.finetune,
                "pretrain": cfg.pretrain, "base_models": [str(self.base_model(b)) for b in self.base_seeds],
                "limits": {"velociti_per_test": cfg.velociti_per_test, "videocon_heldout": cfg.videocon_heldout,
                           "qa_questions": cfg.qa_questions},
                **({"num_processes": self.num_processes} if self.num_processes > 1 else {})}


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
