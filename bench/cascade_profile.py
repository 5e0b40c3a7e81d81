"""Where cascade P(yes) scoring spends its time: the prefix pass vs the segment pass, and the kernel it chose.

    python bench/cascade_profile.py [7b|small] [videos a forward, default 4]

Builds the model as bench/scoring.py does (7b: Video-LLaVA-7B shape, random weights, bf16, on the GPU), scores
4 videos x 32 captions with method="cascade" three times, and prints one JSON line for the last: total seconds,
seconds in `prefix_kv` and `segments_hidden`, pairs/s, and which fused kernels passed their check.
"""
import json
import sys
import time

import torch

sys.path.insert(0, "bench")
import scoring as bench  # noqa: E402

from hacalib.models import build_toy_model  # noqa: E402
from hacalib.models import cascade  # noqa: E402
from hacalib.scoring.pyes import p_yes  # noqa: E402
from hacalib.scoring.requests import VideoLoader  # noqa: E402

shape = sys.argv[1] if len(sys.argv) > 1 else "7b"
per_forward = int(sys.argv[2]) if len(sys.argv) > 2 else 4
if shape == "7b":
    model, processor = bench.build_7b("cuda")
    size, sync = 224, torch.cuda.synchronize
else:
    model, processor = build_toy_model(bench.WORDS, seed=0)
    size, sync = 32, (lambda: None)
model.eval()
reqs = bench.make_requests(4, 32, size)
cache: dict = {}
load = VideoLoader(processor, 8, cache)
for r in reqs:
    load(r)
seconds = {"prefix": 0.0, "segments": 0.0}


def timed(name, fn):
    def wrapper(*args, **kwargs):
        sync()
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        sync()
        seconds[name] += time.perf_counter() - t0
        return out
    return wrapper


cascade.prefix_kv = timed("prefix", cascade.prefix_kv)
cascade.segments_hidden = timed("segments", cascade.segments_hidden)
for _ in range(3):
    seconds.update(prefix=0.0, segments=0.0)
    sync()
    t0 = time.perf_counter()
    p_yes(model, processor, reqs, method="cascade", video_cache=cache, batch_size=per_forward)
    sync()
    total = time.perf_counter() - t0
print(json.dumps({"shape": shape, "videos_per_forward": per_forward, "total_s": round(total, 4), "prefix_s": round(seconds["prefix"], 4),
                  "segments_s": round(seconds["segments"], 4), "pairs_per_s": round(len(reqs) / total, 1),
                  "kernels_checked": {str(k): v for k, v in cascade._USABLE.items()}}))
