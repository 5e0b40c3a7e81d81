"""`haca reproduce`: run the notebooks in order through papermill.

A full run (toy preset by default) re-executes `notebooks/NN_*.ipynb` in place, so the committed reading notebooks
carry the outputs of the last reproduction, and writes tables/figures under `figures/`. A smoke run never touches
the committed notebooks or figures: it writes executed copies and artifacts under `runs/smoke/`.
Expensive work (toy world, pretrained base model, fine-tuning runs) is cached under `cache/` by the library, so
notebooks that need the same training run share it instead of repeating it.

May import: papermill, `hacalib.io`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from .errors import UsageError

NOTEBOOKS = (
    "01_data_construction",
    "02_finetune",
    "03_table1_velociti",
    "04_ssv2_retrieval",
    "05_table2_qa",
    "06_mask_ratio",
    "07_failure_analysis",
    "00_summary",  # last: it reads the tables the others wrote
)


@dataclass
class ReproduceConfig:
    """What `haca reproduce` runs. Paths are relative to the project root unless absolute."""

    project_root: Path = field(default_factory=lambda: Path.cwd())
    preset: str = "toy"  # 'toy', 'videollava-7b' or 'videochat2-7b'
    families: Sequence[str] | None = None  # model families in every table; None: the preset's (toy: both)
    data_root: str = ""  # real data root for the paper preset; empty: the toy world under cache/
    model_path: str = ""  # a paper preset's model folder (videochat2-7b: what `haca convert-videochat2` wrote)
    seeds: Sequence[int] | None = None  # fine-tuning seeds on every base model; None: the preset's
    base_seeds: Sequence[int] | None = None  # toy base models (pretraining seeds); None: the preset's
    retrain_base: bool = False  # toy: pretrain the base models instead of using the shipped ones
    smoke: bool = False
    only: Sequence[str] = ()  # notebook names (or unique prefixes such as '03') to run; empty: all that exist
    kernel_name: str = "python3"
    fixtures_dir: str = ""  # real data samples for notebook 01; empty: ../shared/fixtures beside the project
    num_processes: int = 1  # > 1: each fine-tuning run and evaluation under `accelerate launch` in this many processes
    accelerate_config: str = ""  # an accelerate config file for those launches (FSDP, DeepSpeed, a GPU subset)

    @property
    def fixtures(self) -> Path:
        return Path(self.fixtures_dir) if self.fixtures_dir else self.project_root.parent / "shared" / "fixtures"

    @property
    def run_root(self) -> Path:
        return self.project_root / "runs" / "smoke" if self.smoke else self.project_root

    @property
    def out_dir(self) -> Path:
        return self.run_root / "figures"

    @property
    def cache_dir(self) -> Path:
        # smoke runs get their own cache: a smoke-sized model must never stand in for a full one
        return self.run_root / "cache"


def select_notebooks(notebooks_dir: Path, only: Sequence[str] = ()) -> list[Path]:
    existing = [notebooks_dir / f"{n}.ipynb" for n in NOTEBOOKS if (notebooks_dir / f"{n}.ipynb").exists()]
    if not only:
        return existing
    chosen = []
    for want in only:
        hits = [p for p in existing if p.stem == want or p.stem.startswith(want)]
        if len(hits) != 1:
            names = ", ".join(p.stem for p in existing)
            raise UsageError(f"--only {want!r} matches {len(hits)} notebooks; choose one of: {names}")
        chosen.extend(h for h in hits if h not in chosen)
    return [p for p in existing if p in chosen]  # always in the walkthrough's order (each builds on the ones before)


def validate(cfg: ReproduceConfig) -> list[Path]:
    """Check every setting before any work and return the notebooks to run; a problem raises one UsageError."""
    from .presets import PRESETS

    if cfg.preset not in PRESETS:
        raise UsageError(f"unknown preset {cfg.preset!r}; choose one of {', '.join(PRESETS)}")
    from .presets import preset

    chosen_preset = preset(cfg.preset, smoke=cfg.smoke)
    from .study import resolve_families

    try:
        resolve_families(cfg.preset, cfg.families)
    except ValueError as exc:
        raise UsageError(f"--families: {exc}") from None
    if chosen_preset.pretrain is not None and cfg.model_path:
        raise UsageError(f"--model-path is for a paper preset; preset {cfg.preset!r} builds its own base models")
    if chosen_preset.pretrain is None and not (cfg.model_path or chosen_preset.base_model):
        raise UsageError(f"preset {cfg.preset!r} needs --model-path: the folder `haca convert-videochat2` wrote from the "
                         "original checkpoints (docs/videochat2.md)")
    if cfg.model_path and chosen_preset.family == "videochat2" and not Path(cfg.model_path).is_dir():
        raise UsageError(f"--model-path {cfg.model_path!r} is not a folder: VideoChat2 loads the folder "
                         "`haca convert-videochat2` writes")
    for flag, values in (("--seeds", cfg.seeds), ("--base-seeds", cfg.base_seeds)):
        if values is None:
            continue
        values = list(values)
        if not values:
            raise UsageError(f"{flag} is empty: give comma-separated non-negative integers, e.g. {flag} 0,1")
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in values):
            raise UsageError(f"{flag} must be non-negative integers, got {values}")
        if len(set(values)) != len(values):
            raise UsageError(f"{flag} repeats a seed: {values}")
    if chosen_preset.pretrain is None and cfg.base_seeds is not None and list(cfg.base_seeds) != [0]:
        raise UsageError(f"preset {cfg.preset!r} has one base model (the hub model): drop --base-seeds")
    if chosen_preset.pretrain is None and cfg.retrain_base:
        raise UsageError(f"--retrain-base is for the toy preset; preset {cfg.preset!r} uses the hub model")
    if cfg.preset == "toy" and cfg.data_root:
        raise UsageError(f"--data-root {cfg.data_root!r} is for a paper preset; the toy preset builds its own world "
                         "under cache/ (drop --data-root, or add --preset videollava-7b / videochat2-7b)")
    if cfg.preset != "toy":
        if not cfg.data_root:
            raise UsageError(f"preset {cfg.preset!r} needs --data-root: a folder laid out as in the README")
        if not Path(cfg.data_root).is_dir():
            raise UsageError(f"--data-root {cfg.data_root!r} is not a folder")
    if isinstance(cfg.num_processes, bool) or not isinstance(cfg.num_processes, int) or cfg.num_processes < 1:
        raise UsageError(f"--num-processes must be an integer >= 1, got {cfg.num_processes!r}")
    if cfg.accelerate_config and cfg.num_processes == 1:
        raise UsageError("--accelerate-config is used by the launches of --num-processes N > 1; add --num-processes")
    if cfg.accelerate_config and not Path(cfg.accelerate_config).is_file():
        raise UsageError(f"--accelerate-config {cfg.accelerate_config!r} is not a file (write one with "
                         "`accelerate config --config_file PATH`)")
    notebooks_dir = cfg.project_root / "notebooks"
    if not notebooks_dir.is_dir():
        raise UsageError(f"no notebooks/ under {cfg.project_root}: run from the project checkout or pass --project-root")
    chosen = select_notebooks(notebooks_dir, cfg.only)
    if not chosen:
        raise UsageError(f"no notebooks found under {notebooks_dir}")
    for folder in (cfg.run_root, cfg.out_dir, cfg.cache_dir):
        existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
        if existing is not None and (not existing.is_dir() or not os.access(existing, os.W_OK)):
            raise UsageError(f"cannot write under {folder}: {existing} is not a writable folder")
    return chosen


def _for_notebook(path: Path, cfg: ReproduceConfig) -> str:
    """A path as the notebooks see it: relative to notebooks/ when it lies in or beside the project, so the
    committed notebooks show `../figures` rather than one machine's absolute paths."""
    path = Path(path).resolve()
    if path.is_relative_to(cfg.project_root.resolve().parent):
        return os.path.relpath(path, cfg.project_root.resolve() / "notebooks")
    return str(path)


def notebook_parameters(cfg: ReproduceConfig) -> dict:
    """What the notebooks' parameters cells get (each only what it declares, and only where it differs from the
    cell's default: see `run_notebook`). Seeds left to the preset stay None (the notebooks resolve them and print
    them in their design sentence and provenance). `seed` and `base`, the run a notebook shows in detail, are the
    first of the seeds and base seeds in use, so it is always one of the runs the tables are built from."""
    from .presets import preset

    chosen = preset(cfg.preset, smoke=cfg.smoke)
    seeds = None if cfg.seeds is None else list(cfg.seeds)
    base_seeds = None if cfg.base_seeds is None else list(cfg.base_seeds)
    return {
        "preset": cfg.preset,
        "families": None if cfg.families is None else list(cfg.families),
        # a folder as an absolute path (the kernel starts in notebooks/); a hub id as it is
        "model_path": str(Path(cfg.model_path).resolve()) if Path(cfg.model_path or "/nonexistent").exists()
        else cfg.model_path,
        "data_root": cfg.data_root,
        "seeds": seeds,
        "seed": (seeds or list(chosen.seeds))[0],
        "base_seeds": base_seeds,
        "base": (base_seeds or list(chosen.base_seeds))[0],
        "retrain_base": cfg.retrain_base,
        "smoke": cfg.smoke,
        "out_dir": _for_notebook(cfg.out_dir, cfg),
        "cache_dir": _for_notebook(cfg.cache_dir, cfg),
        "fixtures_dir": _for_notebook(cfg.fixtures, cfg),
        "num_processes": cfg.num_processes,
        # absolute: the launched processes start in the kernel's folder, notebooks/
        "accelerate_config": str(Path(cfg.accelerate_config).resolve()) if cfg.accelerate_config else "",
    }


def _differs_from_default(declared: dict, value) -> bool:
    """Whether `value` differs from a parameters-cell default (papermill gives defaults as source text)."""
    import ast

    try:
        return ast.literal_eval(declared["default"]) != value
    except (ValueError, SyntaxError, KeyError):
        return True  # a default that is an expression: pass the value


def _without_injected_cell(src: Path):
    """The notebook with the parameters cell of an earlier papermill run removed: a reproduction that passes no
    parameters must run the notebook's own defaults, not the last run's (papermill only replaces that cell when it
    injects new parameters)."""
    import nbformat

    nb = nbformat.read(src, as_version=4)
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    nb.metadata.pop("papermill", None)  # the last run's record: papermill writes a new one
    return nb


def _record_input_path(executed: Path, src: Path) -> None:
    """papermill records the notebook it was given as `input_path`; given a notebook object rather than a path, it
    stores the whole object there, and every reproduction would nest the previous notebook inside the next. The
    record names the source file instead."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    nb.metadata.setdefault("papermill", {})["input_path"] = src.name
    nbformat.write(nb, executed)


def notebook_title(src: Path) -> str:
    """A notebook's first markdown heading ("02 · Fine-tuning ..."), what `reproduce` says it is running."""
    import nbformat

    for cell in nbformat.read(src, as_version=4).cells:
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith("#"):
            return cell.source.lstrip().splitlines()[0].lstrip("# ").strip()
    return src.stem


class NotebookFailed(RuntimeError):
    """A notebook cell raised; the message names the notebook, the error and where its executed copy is."""


def run_notebook(src: Path, dst: Path, params: dict, *, cwd: Path, kernel_name: str = "python3",
                 failed_dir: Path | None = None) -> Path:
    """Execute `src` with `params` and write it atomically to `dst`.

    Only parameters the notebook's parameters cell declares, with a value other than its default, are injected, so
    a run on the defaults has no "injected-parameters" cell and reads as the notebook itself.

    When a cell raises, `dst` is left as it was and the executed copy (with the traceback) goes to `failed_dir`
    (default: beside `dst`, as NAME.failed.ipynb); `NotebookFailed` names it.
    """
    import tempfile

    import papermill as pm
    from papermill.exceptions import PapermillExecutionError
    from traitlets.config import Config

    from .io import atomic_path

    declared = pm.inspect_notebook(str(src))
    # a notebook without e.g. `seeds` does not get it; one whose default is already the value does not need it
    used = {k: v for k, v in params.items() if k in declared and _differs_from_default(declared[k], v)}
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst) as tmp:
        tmp_nb = tmp.with_suffix(".ipynb")
        try:
            # The kernel talks over local IPC sockets in a private folder, not TCP: nothing listens on a port, and
            # ipykernel has no "running over TCP without encryption" warning to print for every notebook.
            with tempfile.TemporaryDirectory(prefix="haca-kernel-") as sockets:
                ipc = Config({"KernelManager": {"transport": "ipc", "ip": str(Path(sockets) / "kernel")}})
                # jupyter_client interrupts a kernel before shutting it down; the kernel then logs a
                # "KeyboardInterrupt caught in kernel" error per notebook: not an error of ours, so its log is quiet
                # (a cell's error still reaches us through papermill).
                pm.execute_notebook(_without_injected_cell(src), str(tmp_nb), parameters=used, cwd=str(cwd),
                                    kernel_name=kernel_name, progress_bar=False, request_save_on_cell_execute=False,
                                    config=ipc, extra_arguments=["--IPKernelApp.log_level=CRITICAL"])
            _record_input_path(tmp_nb, src)
            tmp_nb.replace(tmp)
        except PapermillExecutionError as exc:
            kept = (failed_dir or dst.parent) / f"{dst.stem}.failed.ipynb"
            kept.parent.mkdir(parents=True, exist_ok=True)
            if tmp_nb.exists():
                tmp_nb.replace(kept)
            first = str(exc.evalue).strip().splitlines()[0] if str(exc.evalue).strip() else ""
            raise NotebookFailed(f"notebook {src.stem} failed in cell {exc.exec_count}: {exc.ename}: {first} "
                                 f"(the executed notebook with the traceback: {kept})") from exc
        finally:
            if tmp_nb.exists():
                tmp_nb.unlink()
    return dst


def _print(text: str, *, end: str = "\n") -> None:
    print(text, end=end, flush=True)


def reproduce(cfg: ReproduceConfig, log: Callable[..., None] = _print) -> list[Path]:
    """Run the chosen notebooks in order; one line each: what it is doing, then how long it took.

    `log(text, end=...)` receives the start of a line (end="") and then its elapsed time (end="\n").
    """
    chosen = validate(cfg)  # every setting checked before the first notebook starts
    notebooks_dir = cfg.project_root / "notebooks"
    params = notebook_parameters(cfg)
    done = []
    for i, nb in enumerate(chosen, 1):
        dst = (cfg.run_root / "notebooks" / nb.name) if cfg.smoke else nb
        t0 = time.perf_counter()
        log(f"[reproduce] {i}/{len(chosen)} {notebook_title(nb)} ... ", end="")
        try:
            run_notebook(nb, dst, params, cwd=notebooks_dir, kernel_name=cfg.kernel_name,
                         failed_dir=cfg.project_root / "runs" / "failed")
        except BaseException:
            log(f"failed after {time.perf_counter() - t0:.0f} s", end="\n")  # the error follows on its own line
            raise
        log(f"{time.perf_counter() - t0:.0f} s", end="\n")
        done.append(dst)
    log(f"[reproduce] notebooks in {dst.parent}, tables and figures in {cfg.out_dir}", end="\n")
    return done
