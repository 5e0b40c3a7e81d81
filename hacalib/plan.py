"""`haca reproduce --plan`: every training run and evaluation a reproduction would run, what is already cached, and an
estimate of how long the rest takes, made without building anything: no model is loaded, no toy world rendered, no
video decoded (annotation files are read to count items; cache keys are computed as `Experiment` computes them).

The steps mirror what the notebooks ask of `Experiment` (each step is listed under the first chosen notebook that
needs it): 02 makes the base models, fine-tunes every objective with every seed on every base model and scores the
held-out VideoCon pairs and corrections of every run, and the perception readouts and QA of every base model; 03
VELOCITI, 04 SSv2, 05 MSRVTT-QA for every run; 06 the
mask-ratio runs (first seed on each base model) on VELOCITI; 07 the caption log-likelihood of the runs it analyses.
Time estimates come from `hacalib.estimates` (measured throughputs, each with its device and source).

May import: `hacalib.experiment`, `hacalib.study`, `hacalib.presets`, `hacalib.estimates`, `hacalib.reproduce`,
`hacalib.config`, `hacalib.data`,
`hacalib.training`, `hacalib.toyworld`, `hacalib.errors`, `hacalib.io`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .config import DEFAULT_MASK_RATIO, FAMILY_LABELS, OBJECTIVES
from .data.layout import DataRoot
from .errors import DataError
from .experiment import BENCHMARKS, READOUT_BENCHMARKS, Experiment
from .presets import family_slug
from .reproduce import ReproduceConfig, notebook_parameters, validate
from .study import Study
from .estimates import (NOTES, Count, benchmark_counts, estimate_eval, estimate_train, speeds_for,
                        speeds_key)

GENERATION = {"qa", "corrections"}


@dataclass
class Step:
    notebook: str
    kind: str  # 'base', 'train' or 'eval'
    row: str  # 'pretrained' or an objective
    base: int
    seed: int
    mask_ratio: float | None = None  # None: the preset's (haca_mask only)
    benchmark: str = ""
    status: str = ""  # 'cached', 'to run', 'partly done (resumes)', 'unknown: ...', ...
    seconds: float | None = None  # estimated time of what is left (None: not estimable)
    family: str = "video_llava"  # the model family

    @property
    def model(self) -> str:
        ratio = "" if self.mask_ratio is None else f" mask {self.mask_ratio:.2f}"
        return (f"{family_slug(self.family)} {self.row}{ratio} b{self.base}"
                + ("" if self.row == "pretrained" else f" s{self.seed}"))


@dataclass
class Plan:
    preset: str
    smoke: bool
    data_root: str
    cache_dir: str
    notebooks: list[str]
    data_note: str
    counts: dict[str, Count]
    steps: list[Step] = field(default_factory=list)
    speeds: dict = field(default_factory=dict)  # family -> the measured speeds its estimates use
    train_steps: tuple = (0, 0)  # optimizer steps of a fine-tuning run, videos per step
    processes: int = 1  # --num-processes: each run and evaluation under accelerate launch in this many processes
    families: tuple = ("video_llava",)  # model families, each with all the steps


def _runs_needed(exp: Experiment, notebook: str, base: int, seed: int) -> list[tuple]:
    """(row, base, seed, mask_ratio, benchmarks) a notebook asks for, in the order it asks."""
    every = [(r, b, s, None) for r, b, s in exp.runs()]
    detail = [("pretrained", base, 0, None)] + [(r, base, seed, None) for r in OBJECTIVES]
    if notebook.startswith("02"):
        # the perception report reads every base model (and its QA probes) before any fine-tuned row
        return [(*run, ("videocon", "corrections") + ((*READOUT_BENCHMARKS, "qa") if run[0] == "pretrained" else ()))
                for run in every]
    if notebook.startswith("03"):
        return [(*run, ("velociti",)) for run in every]
    if notebook.startswith("04"):
        return [(*run, ("ssv2",)) for run in every]
    if notebook.startswith("05"):
        return [(*run, ("qa",)) for run in every]
    if notebook.startswith("06"):
        out = []
        for ratio in exp.config.mask_ratios:
            for b in exp.base_seeds:
                run = ("haca", b, exp.seeds[0], None) if ratio == 0 else ("haca_mask", b, exp.seeds[0], ratio)
                out.append((*run, ("velociti",)))
        return out
    if notebook.startswith("07"):
        return [(*run, ("velociti", "videocon", "corrections", "videocon_loglik")) for run in detail]
    return []


def _same_run(exp: Experiment, mask_ratio: float | None) -> float | None:
    """The mask ratio as a run's folder sees it (the preset's own ratio and None are the same run)."""
    from .config import DEFAULT_MASK_RATIO

    return None if mask_ratio is None or round(mask_ratio * 100) == round(DEFAULT_MASK_RATIO * 100) else mask_ratio


def _base_status(exp: Experiment, base: int, world_ready: bool) -> str:
    cfg = exp.config
    if cfg.pretrain is None:
        from .models.loading import MODELS

        model = str(exp.base_path(base))  # the preset's hub model, or the user's --model-path
        if Path(model).is_dir():
            return f"local model folder {model}"
        spec = MODELS.get(model)
        if spec is None and exp.model_path:
            return f"missing: --model-path {model} is not a folder"
        name = model if spec is None else spec.name_or_path
        name += f"@{spec.revision[:10]}" if spec and spec.revision else ""
        return f"hub model {name} (downloaded on first use into the Hugging Face cache)"
    from dataclasses import replace

    from .training.bases import MARKER, shipped_dir
    from .training.pretrain import cache_key, is_pretrained, key_config

    recipe = replace(cfg.pretrain, seed=base)
    shipped = shipped_dir(base, family_slug(exp.family)) / MARKER
    record = json.loads(shipped.read_text()) if shipped.is_file() and not exp.retrain_base else {}
    if not world_ready:  # the key needs the world; a shipped base of the same recipe fits the default world
        if record.get("config") == key_config(recipe) and not exp.smoke:
            return "shipped (copied once the toy world is built)"
        return "to pretrain (after the toy world is built)"
    key = cache_key(recipe, exp.root_path)
    if is_pretrained(Path(exp.base_path(base)), key):
        return "cached"
    if record.get("cache_key") == key:
        return "shipped (copied on first use)"
    return "to pretrain"


def _run_status(exp: Experiment, row: str, base: int, seed: int, ratio: float | None, data_ok: bool) -> str:
    from .training.finetune import cache_key, is_finished
    from .training.runs import run_dir_for

    if not data_ok:  # the run's cache key hashes the VideoCon CSV
        return "to train (after the world)" if exp.preset == "toy" else "unknown: no VideoCon CSV"
    cfg = exp.config
    out = exp.run_path(row, seed, ratio, base=base)
    key = cache_key(exp.train_config(row, seed, ratio), cfg.model, exp.base_path(base), DataRoot(exp.root_path),
                    duplicates=cfg.duplicates, missing_videos=cfg.missing_videos)
    if is_finished(out, key):
        return "cached"
    return "partly trained (resumes)" if run_dir_for(out).is_dir() else "to train"


def _eval_status(exp: Experiment, benchmark: str, row: str, base: int, seed: int, ratio: float | None,
                 owner_status: str) -> str:
    if owner_status != "cached" and not owner_status.startswith(("hub model", "local model")):
        return "to run"  # its run (or base model) is made first; results beside it follow
    if row == "pretrained":
        where = exp._base_results_dir(base, make=False)
    else:
        where = exp.run_path(row, seed, ratio, base=base)
    path = exp.eval_file(benchmark, where, base, finetuned=row != "pretrained")
    if path.is_file():
        return "cached"
    return "partly done (resumes)" if path.with_name(f".{path.stem}.scores").is_dir() else "to run"


def make_plan(cfg: ReproduceConfig) -> Plan:
    """The plan of `haca reproduce` with these settings (validated as `reproduce` validates them)."""
    chosen = [p.stem for p in validate(cfg)]
    study = Study.of(preset=cfg.preset, families=cfg.families, data_root=cfg.data_root, cache_dir=str(cfg.cache_dir),
                     smoke=cfg.smoke, seeds=None if cfg.seeds is None else tuple(cfg.seeds),
                     retrain_base=cfg.retrain_base, model_path=cfg.model_path,
                     base_seeds=None if cfg.base_seeds is None else tuple(cfg.base_seeds))
    families, exps = tuple(study.families), [exp for _, exp in study.items()]
    counts, data_note, world_ready = benchmark_counts(exps[0])
    ft = exps[0].config.finetune
    plan = Plan(cfg.preset, cfg.smoke, str(exps[0].root_path), str(cfg.cache_dir), chosen, data_note, counts,
                speeds={f: speeds_for(cfg.preset, f) for f in families},
                train_steps=(ft.max_steps, ft.batch_size * ft.grad_accum), processes=cfg.num_processes,
                families=families)
    for exp in exps:
        _plan_family(plan, exp, chosen, notebook_parameters(cfg), world_ready)
    return plan


def _plan_family(plan: Plan, exp: Experiment, chosen: list[str], params: dict, world_ready: bool) -> None:
    """Append one model family's steps to `plan`: its base models, fine-tuning runs and evaluations."""
    data_ok = world_ready and DataRoot(exp.root_path).videocon_csv.is_file()  # `exp.root` would build a world
    counts, family = plan.counts, exp.family
    speeds = plan.speeds[family]
    seen: set = set()
    base_status: dict[int, str] = {}
    run_status: dict[tuple, str] = {}
    for notebook in chosen:
        for row, base, seed, ratio, benchmarks in _runs_needed(exp, notebook, params["base"], params["seed"]):
            ratio = _same_run(exp, ratio)
            if ("base", base) not in seen and not notebook.startswith("01"):
                seen.add(("base", base))
                base_status[base] = _base_status(exp, base, world_ready)
                plan.steps.append(Step(notebook, "base", "pretrained", base, 0, status=base_status[base],
                                       seconds=estimate_train(speeds, exp, "pretrain", base_status[base]),
                                       family=family))
            owner = base_status[base]
            if row != "pretrained":
                run = (row, base, seed, ratio)
                if run not in seen:
                    seen.add(run)
                    run_status[run] = _run_status(exp, row, base, seed, ratio, data_ok)
                    plan.steps.append(Step(notebook, "train", row, base, seed, ratio, status=run_status[run],
                                           seconds=estimate_train(speeds, exp, row, run_status[run]), family=family))
                owner = run_status[run]
            for benchmark in benchmarks:
                if (benchmark, row, base, seed, ratio) in seen:
                    continue
                seen.add((benchmark, row, base, seed, ratio))
                status = _eval_status(exp, benchmark, row, base, seed, ratio, owner)
                plan.steps.append(Step(notebook, "eval", row, base, seed, ratio, benchmark, status,
                                       estimate_eval(speeds, benchmark, counts.get(benchmark), status), family))


def _duration(seconds: float | None, preset: str) -> str:
    if seconds is None:
        return "unknown"
    if preset == "toy":
        return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.1f} min"
    return f"{seconds / 60:.1f} GPU-min" if seconds < 360 else f"{seconds / 3600:.2f} GPU-h"


def render(plan: Plan) -> str:
    """The plan as text: data, base models, training runs, evaluations (per model and benchmark), totals, speeds."""
    unit = "CPU minutes" if plan.preset == "toy" else "GPU-hours"
    out = [f"haca reproduce --plan: preset {plan.preset}{' (smoke)' if plan.smoke else ''}, notebooks "
           f"{', '.join(n[:2] for n in plan.notebooks)}",
           f"  data root {plan.data_root}", f"  cache     {plan.cache_dir}",
           "  Nothing was built, loaded or decoded to make this plan; times are estimates (see 'Speeds')."]
    if plan.processes > 1:
        out.append(f"  {plan.processes} processes (accelerate launch): times below are device time summed over the "
                   f"processes; wall time is at best 1/{plan.processes} of it (not measured)")
    out += ["",
           "Data (items per evaluated model)", f"  {plan.data_note}"]
    for name in BENCHMARKS:
        if name in plan.counts:
            out.append(f"  {name:16s} {plan.counts[name].describe()}")
    bases = [s for s in plan.steps if s.kind == "base"]
    runs = [s for s in plan.steps if s.kind == "train"]
    evals = [s for s in plan.steps if s.kind == "eval"]
    out += ["", f"Base models ({len(bases)})"]
    out += [f"  [{s.notebook[:2]}] {FAMILY_LABELS.get(s.family, s.family)} base {s.base}: {s.status}"
            + _left(s, plan.preset) for s in bases]
    done = sum(s.status == "cached" for s in runs)
    steps = f"{plan.train_steps[0]:,} x {plan.train_steps[1]}"
    out += ["", f"Fine-tuning runs ({len(runs)}; {done} cached; steps x videos per step: {steps})",
            "  nb  family       objective   base  seed  mask  status                        estimate"]
    for s in runs:
        mask = "-" if s.row != "haca_mask" else f"{(DEFAULT_MASK_RATIO if s.mask_ratio is None else s.mask_ratio):.2f}"
        left = "-" if s.status == "cached" else _duration(s.seconds, plan.preset)
        out.append(f"  {s.notebook[:2]}  {FAMILY_LABELS.get(s.family, s.family):11s}  {s.row:10s}  {s.base:4d}  "
                   f"{s.seed:4d}  {mask:4s}  {s.status:28s}  {left}")
    models = list(dict.fromkeys(s.model for s in evals))
    names = [b for b in BENCHMARKS if any(s.benchmark == b for s in evals)]
    cell = {(s.model, s.benchmark): s for s in evals}
    short = {"cached": "cached", "to run": "run", "partly done (resumes)": "resume"}
    out += ["", f"Evaluations ({len(evals)} results, one per model and benchmark; "
            f"{sum(s.status == 'cached' for s in evals)} cached): cached / run / resume; '-' not asked for",
            "  " + f"{'model':36s}" + "".join(f"{n.replace('videocon_', '')[:11]:>12s}" for n in names)]
    for m in models:
        out.append("  " + f"{m:36s}" + "".join(
            f"{(short.get(cell[(m, n)].status, '?') if (m, n) in cell else '-'):>12s}" for n in names))
    out += ["", f"Estimated time left ({unit})"]
    for n in names:
        todo = [s for s in evals if s.benchmark == n and s.status != "cached"]
        c = plan.counts.get(n)
        per = ", ".join(f"{_duration(estimate_eval(sp, n, c, 'to run') if c else None, plan.preset)}"
                        + (f" ({FAMILY_LABELS.get(f, f)})" if len(plan.speeds) > 1 else "")
                        for f, sp in plan.speeds.items())
        out.append(f"  {n:16s} {len(todo):3d} models x {per} = "
                   f"{_duration(_sum([s.seconds for s in todo]), plan.preset)}")
    todo_runs = [s for s in runs if s.status != "cached"] + [s for s in bases if s.status.startswith("to pretrain")]
    out.append(f"  {'training':16s} {len(todo_runs):3d} runs            = "
               f"{_duration(_sum([s.seconds for s in todo_runs]), plan.preset)}")
    total = _sum([s.seconds for s in plan.steps if s.status != "cached"])
    unknown = sum(s.seconds is None and s.status != "cached" for s in plan.steps)
    out.append(f"  {'total':16s} {_duration(total, plan.preset)}"
               + (f" (+ {unknown} steps whose time is unknown)" if unknown else ""))
    out += ["", "Speeds (measured; every estimate above is derived from these)"]
    for family, speeds in plan.speeds.items():
        measured = speeds_key(plan.preset, family)[1]
        if len(plan.speeds) > 1:
            out.append(f"  {FAMILY_LABELS.get(family, family)}:")
        out += [f"  {sp.describe()}" for sp in speeds]
        if not measured:
            out.append(f"  Note: no speed of {FAMILY_LABELS.get(family, family)} is recorded for this preset yet: "
                       f"its times are estimated from the speeds above, measured on Video-LLaVA.")
    out += [f"  Note: {n}" for n in NOTES["toy" if plan.preset == "toy" else "videollava-7b"]]
    return "\n".join(out)


def _left(step: Step, preset: str) -> str:
    return "" if step.seconds in (None, 0.0) else f" (~{_duration(step.seconds, preset)})"


def _sum(values: list) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else (None if values else 0.0)
