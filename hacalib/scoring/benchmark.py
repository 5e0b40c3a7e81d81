"""One benchmark of one model as an experiment asks for it: the preset's limits and batch size, the resumable
progress files, the entailment question, this process's share, and the videos already processed by earlier models.

    df = evaluate_benchmark("velociti", model, processor, root, preset, progress_dir, prompt="haca")

May import: `hacalib.scoring.evaluate`, `hacalib.prompts`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..prompts import ENTAIL_BENCHMARKS
from . import evaluate


def video_group(benchmark: str) -> str:
    """Which videos a benchmark reads: held-out VideoCon's serve its pairs, corrections and log-likelihoods; each
    other benchmark's serve its P(yes) and its log-likelihood readout."""
    if benchmark in ("videocon", "corrections", "videocon_loglik"):
        return "videocon"
    return benchmark.removesuffix("_loglik")


def evaluate_benchmark(benchmark: str, model: Any, processor: Any, root: Any, preset: Any, progress: Path, *,
                       prompt: str, shard: Any = None, video_store: Any = None) -> pd.DataFrame:
    """The per-item frame of `model` on `benchmark` (`hacalib.scoring.evaluate`), resumable from `progress`.

    Args:
        root: the data root (`hacalib.data.layout.DataRoot`).
        preset: the `hacalib.presets.Preset` (item limits, score batch, duplicates rule).
        progress: folder of the resumable per-video files (made here).
        prompt: the entailment question's option (`hacalib.prompts.ENTAIL_PROMPTS`).
        shard: this process's share when several score it (`hacalib.scoring.shards.Shard`).
        video_store: a `hacalib.models.VideoStore` holding processed videos across models (None: decoded here).
    """
    cache = None if video_store is None else video_store.shelf(processor, video_group(benchmark))
    kw = {"batch_size": preset.score_batch, "shard": shard, "video_cache": cache}
    if benchmark in ENTAIL_BENCHMARKS:
        kw["prompt"] = prompt
    progress.mkdir(parents=True, exist_ok=True)
    if benchmark == "velociti":
        return evaluate.velociti_items(model, processor, root, limit_per_test=preset.velociti_per_test,
                                       resume_file=progress / "velociti.csv", **kw)
    if benchmark == "videocon":
        return evaluate.videocon_pairs(model, processor, root, limit=preset.videocon_heldout,
                                       duplicates=preset.duplicates, resume_file=progress / "videocon.csv", **kw)
    if benchmark == "qa":  # generation: no scoring batch
        return evaluate.qa_answers(model, processor, root, limit=preset.qa_questions,
                                   resume_file=progress / "qa.jsonl", shard=shard, video_cache=cache)
    if benchmark == "corrections":
        return evaluate.correction_answers(model, processor, root, limit=preset.videocon_heldout,
                                           duplicates=preset.duplicates, resume_file=progress / "corrections.jsonl",
                                           prompt=prompt, shard=shard, video_cache=cache)
    if benchmark == "videocon_loglik":  # the file is used only by a shared evaluation (each share's result)
        return evaluate.videocon_loglik(model, processor, root, limit=preset.videocon_heldout,
                                        duplicates=preset.duplicates, resume_file=progress / "videocon_loglik.csv",
                                        **kw)
    if benchmark == "velociti_loglik":  # the perception readout (`hacalib.report.perception`)
        return evaluate.velociti_loglik(model, processor, root, limit_per_test=preset.velociti_per_test,
                                        resume_file=progress / "velociti_loglik.csv", **kw)
    if benchmark == "ssv2_loglik":
        return evaluate.retrieval_loglik(model, processor, root, resume_file=progress / "ssv2_loglik.csv", **kw)
    if benchmark != "ssv2":
        raise ValueError(f"unknown benchmark {benchmark!r}")
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
