"""Benchmark: a LoRA training step on separate padded sequences (the reference codebases' way) vs one packed sequence per video.

Runs every method in one process on the same inputs (random frames, random captions; each video has HACA-mask's
3 targets: Yes / No + correction / masked reconstruction) and prints one JSON line last: {"bench", "device",
"baseline_per_s", "improved_per_s", "speedup", "max_abs_diff", ...} (targets per second; max_abs_diff between
the step losses). Every method runs the same step, `hacalib.training.loss.batch_loss` + backward + AdamW step:

- baseline: one padded sequence per target (`VideoTextDataset` + `pad_collate`), the vision tower once per
  sequence, logits at every position;
- improved: one packed sequence per video (`PackedVideoDataset` + `packed_collate`): the video prefix and the
  vision tower once per video, logits only where a target is;
- improved_cached: improved with the frozen vision features from `VisionFeatureCache` (filled by the warm-up
  pass, as in every epoch after the first).

The AdamW learning rate is 0, so the weights (and the losses) stay the same across steps and methods while
the optimizer's work is still timed. LoRA dropout is 0 so that every method computes the same function.
Processed videos and collated batches are prepared before timing (decoding is not what is compared).

Shapes:
- `small` (default): the toy Video-LLaVA on the CPU, float32, LoRA r=16 on every Llama projection.
- `7b`: Video-LLaVA-7B shape with random weights (`bench/scoring.py`'s `build_7b`), bf16 weights, bf16
  autocast (as `hacalib.training.loop` runs on CUDA), LoRA r=128 on every Llama projection (peft keeps the adapters
  in float32). Also reports peak GPU memory per method and the fraction of the bf16 matmul rate measured in
  this process. Needs CUDA.

Usage: python bench/training.py [--shape small|7b] [--videos N] [--videos-per-step V] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import platform
import statistics
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from hacalib.models import add_lora, build_toy_model, num_video_tokens, preprocess_videos
from hacalib.training.collate import packed_collate, pad_collate
from hacalib.training.datasets import PackedVideoDataset, VideoTextDataset
from hacalib.training.examples import build_examples, encode
from hacalib.training.feature_cache import VisionFeatureCache
from hacalib.training.loss import IGNORE_INDEX, batch_loss
from hacalib.training.masking import WordClassTagger


def _scoring_module():
    """bench/scoring.py (its vocabulary and `build_7b`), loaded by path: bench/ is not a package."""
    spec = importlib.util.spec_from_file_location("bench_scoring", Path(__file__).with_name("scoring.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


SCORING = _scoring_module()
WORDS = SCORING.WORDS
CLASSES = {
    **dict.fromkeys("circle square triangle star it".split(), "NOUN"),
    **dict.fromkeys("moves jumps grows shrinks".split(), "VERB"),
    **dict.fromkeys("red blue green yellow big small another".split(), "ADJ"),
    **dict.fromkeys("left right up down quickly slowly then".split(), "ADV"),
    **dict.fromkeys("one two three".split(), "NUM"),
    **dict.fromkeys("a the".split(), "DET"),
    **dict.fromkeys("and".split(), "CCONJ"),
    **dict.fromkeys("after before while".split(), "SCONJ"),
}


def make_data(processor, n_videos: int, size: int, seed: int = 0):
    """Encoded HACA-mask examples (3 per video) and their processed random videos.

    Returns (encoded, video names, video_fn: Path -> (8, 3, H, W) tensor).
    """
    rng = np.random.default_rng(seed)

    def caption() -> str:  # 8-15 words like a VideoCon caption, always with content words to mask
        words = ["the", rng.choice("red blue green yellow".split()), rng.choice("circle square star".split()),
                 rng.choice("moves jumps grows".split())]
        return " ".join(words + list(rng.choice(WORDS, size=int(rng.integers(4, 12)))))

    triplets = [{"video": f"video{v}.mp4", "description": caption(), "correction": caption()} for v in range(n_videos)]
    examples = build_examples("haca_mask", triplets, tagger=WordClassTagger(CLASSES.__getitem__), seed=seed)
    n_video = num_video_tokens(processor, 8)
    encoded = [encode(e, processor.tokenizer, n_video) for e in examples]
    pixels = {t["video"]: preprocess_videos(processor, [rng.integers(0, 256, (8, size, size, 3), dtype=np.uint8)])[0]
              for t in triplets}
    return encoded, [e.video for e in examples], lambda path: pixels[path.name]


def lora_model(shape: str, r: int):
    """(model with LoRA on every Llama projection, processor, device)."""
    if shape == "7b":
        if not torch.cuda.is_available():
            raise SystemExit("--shape 7b needs a CUDA GPU (the model is built on the GPU, never on the CPU)")
        torch.manual_seed(0)
        model, processor = SCORING.build_7b("cuda")
        device = "cuda"
    else:
        model, processor = build_toy_model(WORDS, seed=0)
        device = "cpu"
    model.requires_grad_(False)
    torch.manual_seed(0)
    model = add_lora(model, r=r, alpha=2 * r, dropout=0.0)
    with torch.no_grad():  # B away from zero: the adapter changes the loss and every weight gets a gradient
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 1e-3)
    return model.train(), processor, device


def lm_params(model) -> tuple[int, int]:
    """Parameters the FLOP count uses: (all of the language model, frozen + LoRA, and lm_head, not the embedding
    table; the LoRA ones among them)."""
    base = model.get_base_model()
    lm = base.model.language_model
    n = sum(p.numel() for p in lm.parameters()) - lm.embed_tokens.weight.numel()
    lora = sum(p.numel() for name, p in lm.named_parameters() if "lora_" in name)
    return n + base.lm_head.weight.numel(), lora


def lora_step_flops(n_params: int, n_lora: int, tokens: int) -> float:
    """FLOPs of one LoRA training pass over `tokens` positions. Forward 2*N*T and the backward's input gradients
    2*N*T; frozen weights need no weight gradients (the 6*N*T of full fine-tuning counts them), so only the
    adapters add theirs, 2*N_lora*T."""
    return 4 * n_params * tokens + 2 * n_lora * tokens


def matmul_peak_tflops(n: int = 8192, iters: int = 50) -> float:
    """Measured bf16 matmul rate of this GPU (TFLOP/s): n x n x n products, back to back."""
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(5):
        a @ b
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        a @ b
    torch.cuda.synchronize()
    return 2 * n**3 * iters / (time.perf_counter() - t0) / 1e12


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=["small", "7b"], default="small")
    ap.add_argument("--videos", type=int, default=None, help="videos in one pass (default: 8 small, 4 7b)")
    ap.add_argument("--videos-per-step", type=int, default=None, help="videos per optimizer step (default: 4 small, 1 7b)")
    ap.add_argument("--baseline-batch", type=int, default=0,
                    help="baseline sequences per forward, gradients accumulated over a step (0: all of the step's; "
                         "1 at 7b on a card under 100 GiB)")
    ap.add_argument("--repeats", type=int, default=3, help="timed passes per method (median reported)")
    ap.add_argument("--lora-r", type=int, default=None, help="LoRA rank (default: 16 small, 128 7b)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    big = args.shape == "7b"
    n_videos = args.videos or (4 if big else 8)
    per_step = args.videos_per_step or (1 if big else 4)
    if n_videos % per_step:
        raise SystemExit(f"--videos ({n_videos}) must be a multiple of --videos-per-step ({per_step})")

    model, processor, device = lora_model(args.shape, args.lora_r or (128 if big else 16))
    pad_id = processor.tokenizer.pad_token_id
    encoded, videos, video_fn = make_data(processor, n_videos, 224 if big else 32)
    flat = VideoTextDataset(encoded, videos, video_fn)
    packed = PackedVideoDataset(encoded, videos, video_fn)
    if len(packed) != n_videos or len(flat) != 3 * n_videos:
        raise RuntimeError(f"expected {n_videos} videos with 3 targets each, got {len(flat)} examples in {len(packed)} packs")
    by_video = {v: [i for i, name in enumerate(videos) if name == v] for v in dict.fromkeys(videos)}
    groups = [list(by_video)[s : s + per_step] for s in range(0, n_videos, per_step)]
    attn = model.config.text_config._attn_implementation

    def to_device(batch: dict) -> dict:
        return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}

    # every step: a list of (micro-batch, weight); weights make the token-mean loss of the whole step
    base_rows = args.baseline_batch or 3 * per_step
    if big and not args.baseline_batch and torch.cuda.get_device_properties(0).total_memory < 100 * 2**30:
        base_rows = 1  # 3 separate 7B sequences at once peaked at 78 GB on an H200: too close to an 80 GB card
    steps: dict[str, list[list[tuple[dict, float]]]] = {"baseline": [], "improved": []}
    tokens = {"baseline": 0, "improved": 0}
    for group in groups:
        rows = [i for v in group for i in by_video[v]]
        micro = [to_device(pad_collate([flat[i] for i in rows[s : s + base_rows]], pad_id)) for s in range(0, len(rows), base_rows)]
        counts = [int((m["labels"] != IGNORE_INDEX).sum()) for m in micro]
        steps["baseline"].append([(m, c / sum(counts)) for m, c in zip(micro, counts)])
        tokens["baseline"] += sum(m["input_ids"].numel() for m in micro)
        items = [packed[list(by_video).index(v)] for v in group]
        batch = to_device(packed_collate(items, pad_id, attn_implementation=attn, video_keys=True))
        steps["improved"].append([(batch, 1.0)])
        tokens["improved"] += batch["input_ids"].numel()
    steps["improved_cached"] = steps["improved"]
    tokens["improved_cached"] = tokens["improved"]

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=0.0)
    autocast = partial(torch.autocast, "cuda", dtype=torch.bfloat16) if big else contextlib.nullcontext
    sync = torch.cuda.synchronize if big else (lambda: None)
    caches = {"baseline": None, "improved": None, "improved_cached": VisionFeatureCache(storage=device)}

    def one_pass(method: str, keep_grads: bool = False):
        losses, grads = [], None
        for step in steps[method]:
            total = 0.0
            for batch, weight in step:
                with autocast():
                    loss = batch_loss(model, batch, vision_cache=caches[method]) * weight
                loss.backward()
                total += loss.detach().float()
            if keep_grads and grads is None:
                grads = torch.cat([p.grad.float().flatten() for p in params])
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(total)
        return torch.stack(losses).cpu().numpy(), grads

    results, peak_mem = {}, {}
    for method in ("baseline", "improved", "improved_cached"):
        if big:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        losses, grads = one_pass(method, keep_grads=True)  # warm-up (fills the feature cache)
        times = []
        for _ in range(args.repeats):
            sync()
            t0 = time.perf_counter()
            one_pass(method)
            sync()
            times.append(time.perf_counter() - t0)
        results[method] = (statistics.median(times), losses, grads)
        if big:
            peak_mem[method] = torch.cuda.max_memory_allocated() / 2**30
        if method == "baseline":
            ref_grads = grads

    targets = 3 * n_videos
    t_base, base_losses, _ = results["baseline"]
    t_imp, imp_losses, imp_grads = results["improved"]
    t_cache, cache_losses, cache_grads = results["improved_cached"]

    def grad_rel(g):
        return float((g - ref_grads).norm() / ref_grads.norm())

    result = {
        "bench": "training",
        "shape": args.shape,
        "device": torch.cuda.get_device_name() if big else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "dtype": "bfloat16 (autocast)" if big else "float32",
        "lora_r": args.lora_r or (128 if big else 16),
        "videos": n_videos,
        "targets_per_video": 3,
        "videos_per_step": per_step,
        "targets": targets,
        "baseline": f"one padded sequence per target, vision tower per sequence, full logits; {base_rows} sequences per forward",
        "baseline_per_s": targets / t_base,
        "improved": "one packed sequence per video (prefix and vision tower once), logits at target columns",
        "improved_per_s": targets / t_imp,
        "speedup": t_base / t_imp,
        "improved_cached_per_s": targets / t_cache,
        "speedup_cached": t_base / t_cache,
        "max_abs_diff": float(np.abs(imp_losses - base_losses).max()),
        "max_abs_diff_cached": float(np.abs(cache_losses - base_losses).max()),
        "loss_mean": float(base_losses.mean()),
        "grad_rel_diff": grad_rel(imp_grads),
        "grad_rel_diff_cached": grad_rel(cache_grads),
        "lm_positions_per_pass": tokens,
        "vision_tower_videos_cached": caches["improved_cached"].tower_videos,
    }
    if big:
        peak = matmul_peak_tflops()
        n_params, n_lora = lm_params(model)
        rate = {m: lora_step_flops(n_params, n_lora, tokens[m]) / results[m][0] / 1e12 for m in results}
        result.update(
            peak_mem_gib={m: round(v, 2) for m, v in peak_mem.items()},
            matmul_peak_tflops=peak,
            flops_formula="4 * N * T + 2 * N_lora * T (frozen weights get no weight gradients); N = language-model "
                          "parameters (frozen + LoRA) + lm_head, embedding table and vision towers excluded; "
                          "T = LM positions computed (padding included)",
            lm_params=n_params,
            lora_params=n_lora,
            tflops={m: round(v, 1) for m, v in rate.items()},
            fraction_of_matmul_peak={m: round(v / peak, 3) for m, v in rate.items()},
        )
    result.update(torch=torch.__version__, transformers=__import__("transformers").__version__)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
