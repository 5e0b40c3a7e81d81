"""Which contrast captions the text alone gives away, and which constructions would not (issue 26, perception gate).

    python experiments/text_priors/contrasts.py WORLD MODEL [MODEL ...] [--out results.csv]

The perception gate needs the readout on another video (the control) at most 0.65. In world version 2 the toy
VideoCon `hallucination` contrast scored 1.00 there and `counting` 0.81: an inserted clause makes a caption longer, so
its summed log-likelihood is lower whatever the video shows; a count below the shapes the caption names, or "four"
(no video has four), is given away by the text. This script builds, from the held-out toy VideoCon scenes of WORLD
(scenes.jsonl, test split), the two constructions of each contrast and scores them with a base model, own video and
another video, as the perception report does (the control is the text prior, which the grammar shares, so a base
pretrained on either world version reads it):

- `hallucination/insert` (version 2): a clause about an absent shape inserted;
- `hallucination/replace` (version 3, `hacalib.toyworld.hallucinate`): one clause replaced by one about an absent
  shape (the caption keeps its length);
- `counting/today` (version 2): any other count in 1-4;
- `counting/unnamed`: the same on the scenes where a shape does nothing (the caption names fewer shapes than it counts);
- `counting/plausible` (version 3): a count the caption allows (at least the shapes it names, at most 3);
- `counting/count_only`: the count sentence alone, true against another count in 1-3: only the video can tell.

Standalone diagnostic: not part of `hacalib` or `haca reproduce`. Results: README.md beside it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
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


def insert_clause(scene, desc, rng):
    """World version 2's hallucination: a clause about an absent shape inserted (never right before an "it")."""
    who = H._pick(rng, H.absent_agents(scene))
    if who is None:
        return None
    clause = Clause(who, ACTIONS[int(rng.integers(len(ACTIONS)))], ADVERBS[int(rng.integers(len(ADVERBS)))])
    spots = [k for k in range(len(desc.clauses) + 1) if k == len(desc.clauses) or desc.clauses[k].subject is not None]
    k = H._pick(rng, spots)
    new = replace(desc, clauses=desc.clauses[:k] + (clause,) + desc.clauses[k:])
    return None if entails(scene, new) else new


def any_count(scene, desc, rng):
    """World version 2's counting: any other count in 1-4."""
    new = H._pick(rng, [n for n in range(1, 5) if n != desc.count])
    return replace(desc, count=new)


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
        named = H.named_agents(desc)
        for variant, make in (("hallucination/insert", insert_clause),  # world version 2
                              ("hallucination/replace", H.hallucinate_hallucination),  # version 3 (the library's)
                              ("counting/today", any_count),  # version 2
                              ("counting/plausible", H.hallucinate_counting)):  # version 3
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
