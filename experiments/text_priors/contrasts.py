"""Which contrast captions the text alone gives away, and which constructions would not (issue 26, perception gate).

    python experiments/text_priors/contrasts.py cache/toyworld/default-seed0 cache/models/toy-base-toy-full-world0-base0 \
        [--family-model ...] [--out experiments/text_priors/results.csv]

The perception gate needs the readout on another video (the control) at most 0.65. On today's world the toy VideoCon
`hallucination` contrast scores 1.00 there and `counting` 0.81: an inserted clause makes a caption longer, so its
summed log-likelihood is lower whatever the video shows; the count sentence ("there are two shapes.") can be read
off the number of shapes the caption names. This script scores, on the held-out toy VideoCon scenes, alternative
constructions of those two contrasts with a shipped base model (no pretraining: the control is the text prior,
which the grammar shares), own video and another video, as the perception report does:

- `hallucination/insert` (today): a clause about an absent shape inserted;
- `hallucination/replace`: one clause replaced by a clause about an absent shape (the caption keeps its length);
- `counting/today`: the count sentence changed;
- `counting/unnamed`: the same on the scenes where a shape does nothing (so the caption names fewer shapes than it
  counts; today's world has few such scenes): can the text prior still read the count?
- `counting/plausible`: the count changed to one the caption allows (at least the shapes it names, at most 3, the
  world's largest count; today's contrast may say "one shape" of a caption naming two, or "four", which no video has);
- `counting/count_only`: the count sentence alone, the contrast among 1-3 ("there are two shapes." vs "there are
  three shapes."), so only the video can tell.

Standalone diagnostic: not part of `hacalib` or `haca reproduce`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hacalib.data.layout import DataRoot
from hacalib.models import load_model
from hacalib.scoring.loglik import caption_loglik
from hacalib.scoring.requests import ScoreRequest
from hacalib.toyworld import hallucinate as H
from hacalib.toyworld.grammar import Clause, count_sentence, describe, realize
from hacalib.toyworld.scene import ACTIONS, ADVERBS, scene_from_dict
from hacalib.toyworld.truth import entails


def replace_clause(scene, desc, rng):
    """One clause replaced by a clause about a shape that is not in the video (never the subject of a later "it")."""
    who = H._pick(rng, H.absent_agents(scene))
    spots = [k for k, c in enumerate(desc.clauses) if c.subject is not None
             and (k + 1 == len(desc.clauses) or desc.clauses[k + 1].subject is not None)]
    k = H._pick(rng, spots)
    if who is None or k is None:
        return None
    clause = Clause(who, ACTIONS[int(rng.integers(len(ACTIONS)))], ADVERBS[int(rng.integers(len(ADVERBS)))])
    clauses = desc.clauses[:k] + (clause,) + desc.clauses[k + 1:]
    new = type(desc)(clauses=clauses, count=desc.count)
    return None if entails(scene, new) else new


def plausible_count(scene, desc, rng):
    """The count changed to one the text allows: at least the shapes the caption names, at most the world's 3."""
    named = len({c.subject.key for c in desc.clauses if c.subject is not None}
                | {c.target.key for c in desc.clauses if c.target is not None})
    new = H._pick(rng, [n for n in range(max(named, 1), 4) if n != desc.count])
    return None if new is None else type(desc)(clauses=desc.clauses, count=new)


def count_only(scene, desc, rng):
    """The count sentence alone, true and changed."""
    new = H._pick(rng, [n for n in range(1, 4) if n != desc.count])  # the world's counts: 1-3 shapes
    return count_sentence(desc.count), count_sentence(new)


def pairs(world: Path, seed: int = 0) -> pd.DataFrame:
    """(variant, video, true caption, contrast caption) for every held-out scene the variant applies to."""
    rng = np.random.default_rng(seed)
    lines = []
    for line in (world / "scenes.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["part"] != "videocon" or "/test/" not in rec["video"]:
            continue
        scene = scene_from_dict(rec["scene"])
        desc = describe(scene)
        video = str(world / rec["video"])
        named = len({(c.subject.key if c.subject else None) for c in desc.clauses} - {None})
        for variant, make in (("hallucination/insert", H.hallucinate_hallucination),
                              ("hallucination/replace", replace_clause),
                              ("counting/today", H.hallucinate_counting),
                              ("counting/plausible", plausible_count)):
            neg = make(scene, desc, rng)
            if neg is not None:
                lines.append((variant, video, realize(desc), realize(neg)))
                if variant == "counting/today" and named < len(scene.agents):
                    lines.append(("counting/unnamed", video, realize(desc), realize(neg)))
        lines.append(("counting/count_only", video, *count_only(scene, desc, rng)))
    return pd.DataFrame(lines, columns=["variant", "video", "caption", "neg_caption"])


def readout(model_dir: str, frame: pd.DataFrame) -> pd.DataFrame:
    model, processor = load_model(model_dir)
    out = []
    for variant, df in frame.groupby("variant", sort=False):
        videos = df["video"].tolist()
        others = [next(videos[(i + k) % len(videos)] for k in range(1, len(videos))
                       if videos[(i + k) % len(videos)] != v) for i, v in enumerate(videos)]
        reqs = [ScoreRequest(v, c) for (cap, neg), own, o in zip(zip(df["caption"], df["neg_caption"]), videos, others)
                for v in (own, o) for c in (cap, neg)]
        ll = caption_loglik(model, processor, reqs, batch_size=16).reshape(len(df), 4)
        out.append({"model": Path(model_dir).name, "variant": variant, "pairs": len(df),
                    "value": float((ll[:, 0] > ll[:, 1]).mean()), "control": float((ll[:, 2] > ll[:, 3]).mean()),
                    "example": f"{df['caption'].iloc[0]} | {df['neg_caption'].iloc[0]}"})
    return pd.DataFrame(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("world")
    ap.add_argument("models", nargs="+")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    torch.set_num_threads(1)
    frame = pairs(Path(args.world))
    result = pd.concat([readout(m, frame) for m in args.models], ignore_index=True)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_colwidth", 120)
    print(result.to_string(index=False))
    if args.out:
        result.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
