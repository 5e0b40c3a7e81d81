"""Toy base-model pretraining: the "pretrained" row of every table, trained here from scratch.

The toy Video-LLaVA (`hacalib.models.build_toy_model`) or toy VideoChat2 (`hacalib.models.videochat2.build_toy_videochat2`,
`PretrainConfig.family`) learns all its parameters on the toy world's
`pretrain/pretrain.jsonl` (captioning, one-word QA, grounded yes/no questions and SSv2-style templates,
mixed from the first step) with the same loop as fine-tuning (`hacalib.training.loop.train`). Without the yes/no
questions the `Yes`/`No` rows of the output layer never train and every fine-tuning objective collapses
to a constant P(yes) (feasibility study, issue 4). Training is packed by default (`PretrainConfig.packed`):
one sequence per video holds the video once and all its examples as segments (PROTOCOL.md, "Packed scoring" and "Packed training"), about
5x more examples per second than one padded row per example on this CPU.

The result is cached: `out_dir/pretrain.json` records a hash of the configuration and of the world's
pretraining data; a later call with the same ones returns `out_dir` without training. The same seed gives
the same weights on the same machine and software. How well a base model came out is
`hacalib.scoring.evaluate.evaluate_toy_model` (it runs the scorers, a later stage).

May import: `hacalib.config`, `hacalib.prompts`, `hacalib.data`, `hacalib.models`, `hacalib.io`, `hacalib.errors`,
`hacalib.toyworld`, the other `hacalib.training` modules.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from .. import prompts
from ..config import PretrainConfig, TrainConfig
from ..data.integrity import check_videos
from ..errors import DataError
from ..io import read_json
from ..models import build_toy_model, family_of, num_video_tokens, processed_video_fn
from ..prompts import ChatTemplate
from ..toyworld.build import PRETRAIN_VERSION
from .datasets import training_data
from .examples import Example, encode
from .loop import train
from .runs import finish_run, is_finished, run_dir_for

PRETRAIN_FILE = "pretrain/pretrain.jsonl"
VIDEO_DIR = "pretrain/videos"
MARKER = "pretrain.json"
REQUIRED_KEYS = ("video", "task", "prompt", "answer")
# Manifest entries left out of the cache key: timings (they change when the same world is rebuilt) and the
# per-file checksums and byte total (mp4 bytes depend on the encoder build; the content enters through
# pretrain.jsonl and the scene records), so a shipped base fits every machine's build of the same world.
VIDEO_LLAVA_FAMILY = "video_llava"
VIDEOCHAT2_ONLY_FIELDS = ("family", "num_query_tokens", "qformer_layers")  # PretrainConfig fields Video-LLaVA ignores
VOLATILE_MANIFEST_KEYS = {"generation_seconds", "seconds", "created", "timings", "checksums", "bytes_total"}


def load_pretrain_records(path: str | Path) -> list[dict]:
    """The records of `pretrain.jsonl`: dicts with video (relative to pretrain/videos), task, prompt, answer."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "pretraining file not found (build the toy world first: haca toyworld)")
    records = []
    for row, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(path, f"malformed JSON: {exc.msg}", row=row) from exc
        for key in REQUIRED_KEYS:
            if not isinstance(rec.get(key), str) or not rec[key].strip():
                raise DataError(path, "missing or empty field", row=row, key=key)
        records.append(rec)
    if not records:
        raise DataError(path, "no pretraining records")
    return records


def pretrain_examples(records: list[dict], template: ChatTemplate = prompts.VIDEO_LLAVA) -> list[Example]:
    """Each record's instruction wrapped in the chat template (its QA prompt), its answer the target."""
    return [Example(r["video"], template.qa_prompt(r["prompt"]), r["answer"], r["task"]) for r in records]


def key_config(cfg: PretrainConfig) -> dict:
    """The recipe as its cache key and `pretrain.json` record it: every field, except that a Video-LLaVA recipe
    leaves out the fields the second family brought, so the shipped bases made before it (and every cache built on
    them) stay valid."""
    config = asdict(cfg)
    if cfg.family == VIDEO_LLAVA_FAMILY:
        for name in VIDEOCHAT2_ONLY_FIELDS:
            config.pop(name)
    return config


def cache_key(cfg: PretrainConfig, world_dir: str | Path) -> str:
    """sha256 of the configuration, the prompt version, the world manifest (minus timings; the pretraining part's
    version in place of the world's) and pretrain.jsonl."""
    world = Path(world_dir)
    manifest = read_json(world / "toyworld.json")
    stable = manifest
    if isinstance(manifest, dict):
        # the world's version covers every part; the pretraining part's own version stands in for it
        stable = {k: v for k, v in manifest.items() if k not in VOLATILE_MANIFEST_KEYS and k != "version"}
        stable["pretrain_version"] = PRETRAIN_VERSION
    config = key_config(cfg)
    if cfg.family == VIDEO_LLAVA_FAMILY:
        version: object = prompts.PROMPT_VERSION
    else:
        version = asdict(toy_template(cfg.family))  # no version string covers the other families' templates: the text
    h = hashlib.sha256()
    h.update(json.dumps({"config": config, "prompt_version": version, "manifest": stable},
                        sort_keys=True, default=str).encode())
    h.update((world / PRETRAIN_FILE).read_bytes())
    return h.hexdigest()


def toy_template(family: str) -> ChatTemplate:
    """The chat template of a toy family (the family's own: VideoChat2's [INST] turns, Video-LLaVA's USER/ASSISTANT)."""
    from ..models import get_family

    return get_family(family).template


def build_toy_base(cfg: PretrainConfig, vocab: list[str]) -> tuple[Any, Any]:
    """The untrained toy model of `cfg.family` and its processor, at the recipe's widths, seeded by `cfg.seed`."""
    if cfg.family == "videochat2":
        from ..models.videochat2 import build_toy_videochat2

        return build_toy_videochat2(vocab, cfg.seed, image_size=cfg.image_size, patch_size=cfg.patch_size,
                                    vision_hidden=cfg.vision_hidden, vision_layers=cfg.vision_layers,
                                    text_hidden=cfg.text_hidden, text_layers=cfg.text_layers,
                                    num_query_tokens=cfg.num_query_tokens, qformer_layers=cfg.qformer_layers)
    return build_toy_model(vocab, cfg.seed, image_size=cfg.image_size, patch_size=cfg.patch_size,
                           vision_hidden=cfg.vision_hidden, vision_layers=cfg.vision_layers, text_hidden=cfg.text_hidden,
                           text_layers=cfg.text_layers, num_frames=cfg.num_frames, position_init=cfg.position_init)


def is_pretrained(out_dir: str | Path, key: str) -> bool:
    """Whether `out_dir` holds a finished toy model for cache key `key`."""
    return (Path(out_dir) / "model.safetensors").is_file() and is_finished(out_dir, MARKER, key)


def toy_vocabulary(world_dir: str | Path) -> list[str]:
    """The toy grammar's vocabulary, from the world's manifest (or the grammar itself when absent)."""
    manifest = read_json(Path(world_dir) / "toyworld.json")
    words = manifest.get("vocabulary") if isinstance(manifest, dict) else None
    if words:
        return list(words)
    from ..toyworld import vocabulary

    return vocabulary()


def pretrain_toy_model(
    world_dir: str | Path,
    out_dir: str | Path,
    cfg: PretrainConfig | None = None,
    *,
    seed: int | None = None,
    steps: int | None = None,
    progress: bool = True,
) -> Path:
    """Build the toy model of `cfg.family` and train all its parameters on the world's pretraining data; return `out_dir`.

    Args:
        world_dir: a toy world (`hacalib.toyworld.build_world`) with toyworld.json and pretrain/.
        out_dir: where the model + processor are saved (`hacalib.models.load_model(out_dir)` reloads them).
            Checkpoints of an unfinished run live next to it in `<out_dir>.run/` and are resumed.
        cfg: pretraining configuration (defaults: `PretrainConfig()`).
        seed, steps: override `cfg.seed` / `cfg.steps`.
        progress: show a progress bar.
    """
    from accelerate import PartialState

    cfg = cfg or PretrainConfig()
    cfg = replace(cfg, **{k: v for k, v in {"seed": seed, "steps": steps}.items() if v is not None})
    world, out = Path(world_dir), Path(out_dir)
    key = cache_key(cfg, world)
    if is_pretrained(out, key):
        return out

    records = load_pretrain_records(world / PRETRAIN_FILE)
    # every video checked (against the world's manifest) before the model is built, not at the step that reads it
    check_videos([(world / VIDEO_DIR / r["video"], world / PRETRAIN_FILE, row, "video") for row, r in enumerate(records)],
                 num_frames=cfg.num_frames, what="pretraining videos")
    model, processor = build_toy_base(cfg, toy_vocabulary(world))
    family = family_of(model)
    family.set_pretraining_trainable(model)  # what a video forward uses: DDP refuses parameters without gradients
    examples = pretrain_examples(records, family.template)
    dataset, collate = pretraining_data(world, examples, model, processor, cfg)

    train_cfg = TrainConfig(
        objective="pretrain", seed=cfg.seed, max_steps=cfg.steps, batch_size=cfg.batch_size, grad_accum=1,
        lr=cfg.lr, weight_decay=cfg.weight_decay, warmup_steps=cfg.warmup_steps, schedule=cfg.schedule,
        max_grad_norm=cfg.max_grad_norm, loss_reduction="token", mixed_precision="no",
        checkpoint_every=cfg.checkpoint_every, log_every=cfg.log_every, keep_checkpoints=1,
        output_dir=str(run_dir_for(out)),
    )
    result = train(model, dataset, train_cfg, collate_fn=collate, progress=progress)

    def summary(history: list[dict]) -> dict:
        return {
            "cache_key": key,
            "config": key_config(cfg),
            "prompt_version": prompts.PROMPT_VERSION,
            "family": cfg.family,
            "examples": len(examples),
            "examples_by_task": _count(r["task"] for r in records),
            "parameters": sum(p.numel() for p in model.parameters()),
            "processes": PartialState().num_processes,
            "resumed_from_step": result.start_step,
            "end_loss": history[-1]["loss"] if history else None,
            "train_seconds": result.wall_seconds,
            "packed_items": len(dataset) if cfg.packed else None,
            "samples_per_second": result.samples_per_second,  # items: videos when packed
            "examples_per_second": result.samples_per_second * len(examples) / len(dataset),
            "steps_per_second": (cfg.steps - result.start_step) / max(result.wall_seconds, 1e-9),
            "versions": {"torch": torch.__version__, "transformers": _version("transformers")},
        }

    def model_files(tmp: Path) -> None:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)

    return finish_run(out, result, MARKER, summary, model_files)


def pretraining_data(world: Path, examples: list[Example], model: Any, processor: Any, cfg: PretrainConfig):
    """(dataset, collate_fn) of the world's pretraining examples for `model` (`hacalib.training.datasets.training_data`),
    packed or padded as `cfg` says; a word outside the toy vocabulary is an error naming its row."""
    tok = processor.tokenizer
    family = family_of(model)
    n_video = num_video_tokens(processor, cfg.num_frames)
    encoded = []
    for row, ex in enumerate(examples):
        feats = encode(ex, tok, n_video, template=family.template)
        if tok.unk_token_id in feats["input_ids"]:
            raise DataError(world / PRETRAIN_FILE, "text has words outside the toy vocabulary", row=row,
                            key="answer" if tok.unk_token_id in feats["labels"] else "prompt")
        encoded.append(feats)
    return training_data(
        encoded, [e.video for e in examples], processed_video_fn(processor, cfg.num_frames), packed=cfg.packed,
        pad_id=tok.pad_token_id, attn_implementation=family.attn_implementation(model),
        video_root=world / VIDEO_DIR, source=world / PRETRAIN_FILE, max_segments=cfg.max_segments)


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return dict(sorted(out.items()))


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def main(argv: list[str] | None = None) -> int:
    """`python -m hacalib.training.pretrain --world DIR --out DIR [--steps N] [--seed N] [--config JSON]`.

    Runs in one process or under `accelerate launch` / `torchrun` (every process runs it; DDP).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", required=True, help="toy world folder")
    parser.add_argument("--out", required=True, help="model output folder")
    parser.add_argument("--config", help="JSON file with PretrainConfig fields")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    cfg = PretrainConfig(**read_json(args.config)) if args.config else PretrainConfig()
    if args.batch_size:
        cfg = replace(cfg, batch_size=args.batch_size)
    path = pretrain_toy_model(args.world, args.out, cfg, seed=args.seed, steps=args.steps, progress=not args.no_progress)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
