"""Benchmark: greedy QA generation grouped by video (`hacalib.scoring.generation.generate_texts`), the path MSRVTT-QA
and the correction analysis take, in questions per second.

MSRVTT-QA asks ~24 questions per video (72,821 over 2,990 videos); the paper preset answers them with
`max_new_tokens=16`, 16 prompts per `generate` call, the vision tower once per video (each prompt still carries its
video's 2,056 tokens through the prefill). Random frames and random 5-15 word questions; processed videos are cached
before timing (decoding is not what is measured). Prints one JSON line last: {"bench", "device", "questions_per_s",
"seconds_per_question", ...}.

Shapes (as `bench/scoring.py`):
- `small` (default): the toy Video-LLaVA on the CPU, float32; random weights (answers run to `--max-new-tokens`), or
  with `--model DIR` a saved toy model; with `--data-root WORLD` too, the toy world's own questions and videos, so
  a trained base answers as in the evaluation (one word, then EOS).
- `7b`: Video-LLaVA-7B shape with random weights, bf16, built on the GPU (`bench/scoring.py`'s `build_7b`). A
  random-weight model rarely emits EOS, so every answer runs the full `--max-new-tokens`: an upper bound on the
  decode work of a real model, whose one-word answers stop early.

Usage: python bench/generation.py [--shape small|7b] [--videos N] [--questions 24] [--batch 16]
       [--max-new-tokens 16] [--repeats 2] [--threads 2] [--model DIR] [--data-root DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
from pathlib import Path

import torch

from hacalib.models import build_toy_model, family_of, load_model
from hacalib.scoring.generation import generate_texts
from hacalib.scoring.requests import VideoLoader


def _bench_module(name: str):
    """A sibling bench script (bench/ is not a package), loaded by path."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=["small", "7b"], default="small")
    ap.add_argument("--videos", type=int, default=None, help="videos (default: 4 small, 2 7b)")
    ap.add_argument("--questions", type=int, default=24, help="questions per video (MSRVTT-QA: ~24)")
    ap.add_argument("--batch", type=int, default=16, help="prompts per generate call (the evaluation's default)")
    ap.add_argument("--max-new-tokens", type=int, default=16, help="answer length limit (QA's default)")
    ap.add_argument("--repeats", type=int, default=2, help="timed runs (median reported) after one warm-up")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    ap.add_argument("--model", default="", help="small: a saved model folder instead of random weights (e.g. a shipped "
                    "toy base, hacalib/bases/toy-videollava-seed0)")
    ap.add_argument("--data-root", default="", help="small: the MSRVTT-QA questions and videos of this data root (e.g. a "
                    "toy world) instead of random ones, so a trained --model answers as in the evaluation")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    scoring = _bench_module("scoring")
    if args.shape == "7b":
        if not torch.cuda.is_available():
            raise SystemExit("--shape 7b needs a CUDA GPU (the model is built on the GPU, never on the CPU)")
        torch.manual_seed(0)
        model, processor = scoring.build_7b("cuda")
        videos, size, dtype = args.videos or 2, 224, "bfloat16"
        device_name, sync = torch.cuda.get_device_name(), torch.cuda.synchronize
    elif args.model:
        model, processor = load_model(args.model, dtype="float32")
        videos, size, dtype = args.videos or 4, 32, "float32"
        device_name = f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
        sync = lambda: None  # noqa: E731
    else:
        model, processor = build_toy_model(scoring.WORDS, seed=0)
        videos, size, dtype = args.videos or 4, 32, "float32"
        device_name = f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
        sync = lambda: None  # noqa: E731
    model.eval()
    if args.data_root:
        from hacalib.data import load_msrvtt_qa
        from hacalib.data.layout import DataRoot
        from hacalib.scoring.generation import qa_inputs

        root = DataRoot(args.data_root)
        items = load_msrvtt_qa(root.msrvtt_qa_questions, root.msrvtt_qa_answers, video_root=root.msrvtt_qa_videos)
        reqs, prompts = qa_inputs(model, items)
        videos = len({r.key() for r in reqs})
    else:
        reqs = scoring.make_requests(videos, args.questions, size)
        prompts = [family_of(model).template.qa_prompt(r.caption) for r in reqs]
    cache: dict = {}
    load = VideoLoader(processor, 8, cache)
    for r in reqs:
        load(r)  # preprocess every video before timing

    def run():
        return generate_texts(model, processor, reqs, prompts, max_new_tokens=args.max_new_tokens,
                              batch_size=args.batch, video_cache=cache)

    seconds, answers = scoring.timed(run, args.repeats, sync)
    n = len(reqs)
    new_tokens = sum(len(processor.tokenizer(a, add_special_tokens=False).input_ids) for a in answers)
    result = {
        "bench": "generation", "shape": args.shape, "model": args.model or "random weights", "device": device_name,
        "dtype": dtype, "videos": videos,
        "data": args.data_root or "random frames and words", "questions_per_video": n / videos, "questions": n, "batch": args.batch,
        "max_new_tokens": args.max_new_tokens, "mean_answer_tokens": new_tokens / n,
        "seconds": seconds, "questions_per_s": n / seconds, "seconds_per_question": seconds / n,
        "torch": torch.__version__,
    }
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
