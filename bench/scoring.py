"""Benchmark: P(yes) scoring, one forward per pair (the reference codebases' way) vs one packed sequence per video.

Runs every method in one process on the same inputs (random frames, random captions, 32 per video) and
prints one JSON line last: {"bench", "device", "baseline_per_s", "improved_per_s", "speedup",
"max_abs_diff", ...}; before it, one `# method: N pairs/s` line per method as it finishes. Methods (all
`hacalib.scoring.pyes.p_yes`):

- baseline: method="naive", batch_size=1 — one full forward per (video, caption), vision tower included;
- batched naive: method="naive", batch_size=--naive-batch (reported as `batched_naive_per_s`; skipped with
  --skip-batched-naive);
- improved: method="packed" — the vision tower once per video, one packed sequence per video (dense block
  mask), lm_head at the answer positions only;
- cascade: method="cascade" — the forward's videos' prefixes once (causal, no mask), all their captions as one
  row of segments attending to their video's kept prefix keys/values (`cascade_per_s`, `cascade_vs_packed` =
  its speed over packed's, `max_abs_diff_cascade` against the baseline);
- with --packed-batch B1,B2,...: packed and cascade at each number of videos per forward (`by_batch`, keyed by
  it); the headline keys above are the first.
- flex (--flex, timed last): the packed method with a FlexAttention block mask (`improved_flex_per_s`; a
  failure, or running past --flex-timeout seconds, is reported as `flex_error`, the other numbers stand).

Processed videos are cached before timing for every method (decoding is not what is compared).

Shapes:
- `small` (default): the toy Video-LLaVA on the CPU, float32, random weights; or with `--model DIR` a saved model
  of either family (e.g. a shipped toy base: `hacalib/bases/toy-videochat2-seed0`).
- `7b`: Video-LLaVA-7B shape with random weights, built directly on the GPU in bf16: CLIP ViT-L/14 at 224
  (24 layers, width 1024) + Llama-7B (32 layers, width 4096, 32 heads, MLP 11008, vocab 32064), 8 frames
  -> 2,056 video tokens. The word-level toy tokenizer stands in for Llama's (no download), so captions
  are a few tokens shorter than real ones. Needs CUDA; never built on the CPU.

Usage: python bench/scoring.py [--shape small|7b] [--videos N] [--captions 32] [--repeats 3] [--flex]
       [--flex-timeout S] [--naive-repeats N] [--skip-batched-naive] [--packed-batch 1,4] [--model DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import signal
import statistics
import time

import numpy as np
import torch

from hacalib.models import build_toy_model, build_toy_processor, family_of, load_model
from hacalib.scoring.pyes import p_yes
from hacalib.scoring.requests import ScoreRequest, VideoLoader

WORDS = (
    "a the one two three red blue green yellow circle square triangle star moves jumps left right up down "
    "grows shrinks quickly slowly then it and after before while another big small"
).split()


def build_7b(device: str = "cuda", dtype: torch.dtype = torch.bfloat16):
    """Video-LLaVA-7B-shaped model with random weights, created directly on `device` (or 'meta')."""
    from transformers import CLIPVisionConfig, LlamaConfig, VideoLlavaConfig, VideoLlavaForConditionalGeneration

    processor = build_toy_processor(WORDS, image_size=224, patch_size=14)
    tok = processor.tokenizer
    vision = CLIPVisionConfig(
        hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
        image_size=224, patch_size=14, projection_dim=768,
    )
    text = LlamaConfig(
        vocab_size=32064, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
        num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096, rms_norm_eps=1e-5,
        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
    )
    config = VideoLlavaConfig(
        vision_config=vision, text_config=text,
        image_token_index=tok.convert_tokens_to_ids("<image>"), video_token_index=tok.convert_tokens_to_ids("<video>"),
        vision_feature_layer=-2, vision_feature_select_strategy="default", image_seq_length=256, video_seq_length=2056,
    )
    config._attn_implementation = "sdpa"
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = VideoLlavaForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(previous)
    return model.eval(), processor


def make_requests(n_videos: int, captions: int, size: int, seed: int = 0) -> list[ScoreRequest]:
    """Random frames (8, size, size, 3) and random 5-15 word captions, `captions` per video."""
    rng = np.random.default_rng(seed)
    reqs = []
    for v in range(n_videos):
        frames = rng.integers(0, 256, (8, size, size, 3), dtype=np.uint8)
        for _ in range(captions):
            words = rng.choice(WORDS, size=int(rng.integers(5, 16)))
            reqs.append(ScoreRequest(frames, " ".join(words), video_id=f"video{v}"))
    return reqs


def timed(fn, repeats: int, sync) -> tuple[float, np.ndarray]:
    """Median seconds over `repeats` runs after one warm-up run, and the last result."""
    out = fn()
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        out = fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=["small", "7b"], default="small")
    ap.add_argument("--videos", type=int, default=None, help="videos (default: 4 small, 2 7b)")
    ap.add_argument("--captions", type=int, default=32, help="captions per video")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per method (median reported)")
    ap.add_argument("--naive-batch", type=int, default=8, help="pairs per forward for the batched naive method")
    ap.add_argument("--packed-batch", default="1", help="videos per forward of packed and cascade; a comma list "
                    "times both at each (the first gives the headline numbers)")
    ap.add_argument("--flex", action="store_true", help="also time the packed method with a FlexAttention block mask")
    ap.add_argument("--flex-timeout", type=int, default=0, help="give up on flex after this many seconds (0: never)")
    ap.add_argument("--naive-repeats", type=int, default=None,
                    help="timed runs of the batch-1 baseline (default: --repeats); it is also the P(yes) reference")
    ap.add_argument("--skip-batched-naive", action="store_true", help="do not time the batched naive method")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    ap.add_argument("--model", default="", help="small: a saved model folder (either family) instead of the random "
                    "toy Video-LLaVA")
    args = ap.parse_args(argv)
    if args.repeats < 1 or (args.naive_repeats is not None and args.naive_repeats < 1):
        ap.error("--repeats and --naive-repeats must be >= 1")
    try:
        batches = [int(b) for b in args.packed_batch.split(",")]
    except ValueError:
        ap.error(f"--packed-batch takes a comma list of integers, got {args.packed_batch!r}")
    if min(batches) < 1:
        ap.error("--packed-batch values must be >= 1")
    torch.set_num_threads(args.threads)

    if args.shape == "7b":
        if not torch.cuda.is_available():
            raise SystemExit("--shape 7b needs a CUDA GPU (the model is built on the GPU, never on the CPU)")
        torch.manual_seed(0)
        model, processor = build_7b("cuda")
        videos, size, dtype = args.videos or 2, 224, "bfloat16"
        device_name = torch.cuda.get_device_name()
        sync = torch.cuda.synchronize
    else:
        model, processor = load_model(args.model, dtype="float32") if args.model else build_toy_model(WORDS, seed=0)
        videos, size, dtype = args.videos or 4, 32, "float32"
        device_name = f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
        sync = lambda: None  # noqa: E731
    reqs = make_requests(videos, args.captions, size)
    cache: dict = {}
    load = VideoLoader(processor, 8, cache)
    for r in reqs:
        load(r)  # preprocess every video before timing

    def run(**kw):
        return lambda: p_yes(model, processor, reqs, video_cache=cache, **kw)

    n = len(reqs)

    reference: list[np.ndarray] = []  # the batch-1 naive scores, once measured

    def measure(name, repeats=args.repeats, **kw):
        seconds, scores = timed(run(**kw), repeats, sync)
        diff = f", max |P(yes) diff| vs naive {np.abs(scores - reference[0]).max():.2e}" if reference else ""
        print(f"# {name}: {n / seconds:.1f} pairs/s{diff}", flush=True)
        reference.append(scores)
        return seconds, scores

    naive_repeats = args.repeats if args.naive_repeats is None else args.naive_repeats
    t_base, base = measure("naive (batch 1)", naive_repeats, method="naive", batch_size=1)
    by_batch = {}
    for b in batches:
        where = f" ({b} videos a forward)" if len(batches) > 1 else ""
        t_p, p = measure("packed" + where, method="packed", batch_size=b, segments_per_pack=args.captions)
        t_c, c = measure("cascade" + where, method="cascade", batch_size=b, segments_per_pack=args.captions)
        by_batch[str(b)] = {"packed_per_s": n / t_p, "cascade_per_s": n / t_c, "cascade_vs_packed": t_p / t_c,
                            "max_abs_diff_packed": float(np.abs(p - base).max()),
                            "max_abs_diff_cascade": float(np.abs(c - base).max())}
        if b == batches[0]:
            t_packed, packed, t_cascade, cascade = t_p, p, t_c, c
    packed_kw = dict(method="packed", batch_size=batches[0], segments_per_pack=args.captions)
    result = {
        "bench": "scoring",
        "shape": args.shape,
        "model": args.model or ("random weights" if args.shape == "small" else "Video-LLaVA-7B shape, random weights"),
        "device": device_name,
        "dtype": dtype,
        "videos": videos,
        "captions_per_video": args.captions,
        "pairs": n,
        "baseline": "naive, one full forward per pair (batch 1)",
        "baseline_per_s": n / t_base,
        "improved": "packed, one sequence per video, vision once per video",
        "improved_per_s": n / t_packed,
        "speedup": t_base / t_packed,
        "max_abs_diff": float(np.abs(packed - base).max()),
        "cascade": "cascade, the prefixes once per forward, captions as segments over their kept keys/values",
        "cascade_per_s": n / t_cascade,
        "cascade_vs_packed": t_packed / t_cascade,
        "max_abs_diff_cascade": float(np.abs(cascade - base).max()),
        "videos_per_forward": batches[0],
        "by_batch": by_batch,
        "pyes_std": float(base.std()),
    }
    if not args.skip_batched_naive:
        t_batched, batched = measure("batched naive", method="naive", batch_size=args.naive_batch)
        result.update(
            batched_naive_per_s=n / t_batched, naive_batch=args.naive_batch,
            speedup_vs_batched_naive=t_batched / t_packed,
            max_abs_diff_batched_naive=float(np.abs(batched - base).max()),
        )
    if args.flex:
        lm = family_of(model).language_model(model)
        old = lm.config._attn_implementation
        lm.config._attn_implementation = "flex_attention"
        def give_up(signum, frame):
            raise TimeoutError(f"flex still running after --flex-timeout {args.flex_timeout} s")

        previous = signal.signal(signal.SIGALRM, give_up) if args.flex_timeout else None
        signal.alarm(args.flex_timeout)
        try:
            t_flex, flex = measure("packed, flex attention", **packed_kw)
            result.update(improved_flex_per_s=n / t_flex, max_abs_diff_flex=float(np.abs(flex - base).max()))
        except Exception as e:  # noqa: BLE001  (FlexAttention may not compile here; the other numbers stand)
            result.update(flex_error=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300])
            print(f"# packed, flex attention: failed ({result['flex_error']})", flush=True)
        finally:
            signal.alarm(0)
            if previous is not None:
                signal.signal(signal.SIGALRM, previous)
            lm.config._attn_implementation = old
    result.update(torch=torch.__version__, transformers=__import__("transformers").__version__)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
