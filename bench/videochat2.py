"""Benchmark VideoChat2 through hacalib's shared code: P(yes) one forward per pair vs packed, and one LoRA step
packed vs one row per target.

    python bench/videochat2.py [--shape small|7b] [--videos N] [--captions 32] [--frames 16] [--repeats 3]

Shapes:
- `small` (default): the tiny random VideoChat2 on the CPU, float32 (what tests/test_videochat2_bench.py runs).
- `7b`: VideoChat2-Mistral-7B shape with random weights, built directly on the GPU in bf16: UMT-L/16 at 224
  (23 blocks, width 1024) -> Q-Former (BERT-base, 96 queries) -> Mistral-7B (32 layers, width 4096, 8 KV heads,
  MLP 14336, vocab 32000). The word-level toy tokenizer stands in for Mistral's (no download). Needs CUDA.

Prints `# ...` progress lines, then one JSON line last: pairs/s for `p_yes(method="naive", batch_size=1)`
(`baseline_per_s`) and `method="packed"` (`improved_per_s`), their largest |P(yes)| difference; for a LoRA
training step's forward + backward (r 16, alpha 32 on the 7 projections, the vision side frozen; no optimizer
update, so both layouts see the same weights) over `--videos` videos x 3 targets: targets/s with one padded row
per target (`train_baseline_per_s`) and packed (`train_improved_per_s`), the loss difference, and the peak GPU
memory of each phase (GB; null on the CPU).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
from pathlib import Path

import numpy as np
import torch

from hacalib.models import add_lora
from hacalib.models.videochat2 import VIDEOCHAT2, build_tiny_videochat2
from hacalib.scoring.pyes import p_yes
from hacalib.scoring.requests import ScoreRequest, VideoLoader
from hacalib.training.datasets import training_data
from hacalib.training.examples import Example, answer_token_ids, encode
from hacalib.training.loss import batch_loss

WORDS = ("a the one two three red blue green yellow circle square triangle star moves jumps left right up down "
         "grows shrinks quickly slowly then it and after before while another big small").split()


def build_7b(device: str = "cuda", dtype: torch.dtype = torch.bfloat16):
    """VideoChat2-Mistral-7B-shaped model with random weights, created directly on `device`."""
    from transformers import InstructBlipQFormerConfig, MistralConfig

    from hacalib.models.videochat2 import (VideoChat2Config, VideoChat2ForConditionalGeneration, VideoChat2Processor,
                                           VideoChat2VisionConfig)
    from hacalib.models.videochat2.configuration import QFORMER_VOCAB_SIZE

    tiny, proc = build_tiny_videochat2(WORDS, seed=0)  # for its word-level tokenizer
    tok = proc.tokenizer
    text = MistralConfig(vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                         num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=32768,
                         sliding_window=None, rope_theta=1e6, pad_token_id=tok.pad_token_id,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=False)
    config = VideoChat2Config(vision_config=VideoChat2VisionConfig(),
                              qformer_config=InstructBlipQFormerConfig(vocab_size=QFORMER_VOCAB_SIZE,
                                                                       encoder_hidden_size=1024),
                              text_config=text, num_query_tokens=96,
                              video_token_id=tok.convert_tokens_to_ids("<video>"))
    config._attn_implementation = "sdpa"
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = VideoChat2ForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(previous)
    return model.eval(), VideoChat2Processor(tok, image_size=224, num_video_tokens=96)


def make_requests(n_videos: int, captions: int, frames: int, size: int, seed: int = 0) -> list[ScoreRequest]:
    rng = np.random.default_rng(seed)
    reqs = []
    for v in range(n_videos):
        video = rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8)
        for _ in range(captions):
            reqs.append(ScoreRequest(video, " ".join(rng.choice(WORDS, size=int(rng.integers(5, 16)))), video_id=f"v{v}"))
    return reqs


def _scoring_bench():
    """bench/scoring.py (benches are scripts, not a package: loaded by path) for its `timed`."""
    spec = importlib.util.spec_from_file_location("bench_scoring", Path(__file__).with_name("scoring.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


timed = _scoring_bench().timed  # median seconds over repeats after one warm-up, and the last result


def peak_gb(cuda: bool) -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=["small", "7b"], default="small")
    ap.add_argument("--videos", type=int, default=2)
    ap.add_argument("--captions", type=int, default=32, help="captions per video (scoring)")
    ap.add_argument("--frames", type=int, default=16, help="frames per video (the demo evaluates with 16)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    cuda = args.shape == "7b"
    if cuda and not torch.cuda.is_available():
        raise SystemExit("--shape 7b needs a CUDA GPU")
    torch.manual_seed(0)
    if cuda:
        model, proc = build_7b("cuda")
        size, sync, device_name = 224, torch.cuda.synchronize, torch.cuda.get_device_name()
    else:
        model, proc = build_tiny_videochat2(WORDS, seed=0)
        size, sync = 32, (lambda: None)
        device_name = f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    reqs = make_requests(args.videos, args.captions, args.frames, size)
    cache: dict = {}
    load = VideoLoader(proc, args.frames, cache)
    for r in reqs:
        load(r)
    result = {"bench": "videochat2", "shape": args.shape, "device": device_name, "frames": args.frames,
              "pairs": len(reqs), "dtype": str(next(model.parameters()).dtype).replace("torch.", "")}

    def score(**kw):
        return lambda: p_yes(model, proc, reqs, video_cache=cache, num_frames=args.frames, **kw)

    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t_naive, naive = timed(score(method="naive", batch_size=1), args.repeats, sync)
    result["baseline_per_s"], result["score_baseline_peak_gb"] = len(reqs) / t_naive, peak_gb(cuda)
    print(f"# naive: {result['baseline_per_s']:.1f} pairs/s", flush=True)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t_packed, packed = timed(score(method="packed"), args.repeats, sync)
    result["improved_per_s"], result["score_improved_peak_gb"] = len(reqs) / t_packed, peak_gb(cuda)
    result["speedup"] = result["improved_per_s"] / result["baseline_per_s"]
    result["max_abs_diff"] = float(np.abs(packed - naive).max())
    print(f"# packed: {result['improved_per_s']:.1f} pairs/s, max |P(yes) diff| {result['max_abs_diff']:.2e}", flush=True)

    # one LoRA step: 3 targets per video (Yes, No + correction, No), packed vs one padded row per target
    model.requires_grad_(False)
    lora = add_lora(model, r=16, alpha=32, dropout=0.0, seed=0).train()
    tpl, tok = VIDEOCHAT2.template, proc.tokenizer
    answers, nvt = answer_token_ids(tok, tpl), proc.num_video_tokens
    examples = []
    for v in range(args.videos):
        caps = [r.caption for r in reqs if r.video_id == f"v{v}"][:2]
        examples += [Example(f"v{v}", tpl.entail_prompt(caps[0]), "Yes", "pos"),
                     Example(f"v{v}", tpl.entail_prompt(caps[1]), "No, " + caps[0], "neg"),
                     Example(f"v{v}", tpl.entail_prompt(caps[1]), "No", "neg")]
    encoded = [encode(e, tok, nvt, answer_ids=answers, template=tpl) for e in examples]
    pixels = {f"v{v}": cache[f"v{v}"] for v in range(args.videos)}
    video_fn = lambda path: pixels[path.name]  # noqa: E731
    losses = {}
    for name, packed_ in (("baseline", False), ("improved", True)):
        data, collate = training_data(encoded, [e.video for e in examples], video_fn, packed=packed_,
                                      pad_id=tok.pad_token_id, attn_implementation=VIDEOCHAT2.attn_implementation(lora))
        batch = {k: (v.to(model.device) if isinstance(v, torch.Tensor) else v)
                 for k, v in collate([data[i] for i in range(len(data))]).items()}

        def step(batch=batch):
            lora.zero_grad(set_to_none=True)
            loss = batch_loss(lora, batch)
            loss.backward()
            return float(loss.detach())

        if cuda:
            torch.cuda.reset_peak_memory_stats()
        seconds, losses[name] = timed(step, args.repeats, sync)
        result[f"train_{name}_per_s"] = len(examples) / seconds
        result[f"train_{name}_peak_gb"] = peak_gb(cuda)
        print(f"# LoRA step {name}: {result[f'train_{name}_per_s']:.2f} targets/s", flush=True)
    result["targets"] = len(examples)
    result["train_speedup"] = result["train_improved_per_s"] / result["train_baseline_per_s"]
    result["train_loss_abs_diff"] = abs(losses["improved"] - losses["baseline"])
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
