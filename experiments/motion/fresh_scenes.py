"""Diagnostic (issue 4): can the toy Video-LLaVA learn motion and event order when every step sees fresh scenes?

Not part of the library or of `haca reproduce`. Scenes come from the toy world's own sampler and renderer and go
into the model as normalised frames in memory (no mp4 round trip), one question per scene from the world's own QA
grammar (`hacalib.toyworld.questions.all_questions`), frames through the model's own processor, loss on the
one-word answer only, batch 32, AdamW with 50 warmup steps then a constant learning rate. Every 250 steps it prints
held-out accuracy on fixed scenes (--held-out, seed 123) by question type and number of shapes.

    .venv/bin/python experiments/motion/fresh_scenes.py OUT --kinds where --moves-only --single-steps 1200 --steps 3600

`--single-steps N`: the first N steps use one-shape scenes only (a curriculum); afterwards 1 to --agents shapes.
`--init DIR` starts from a saved model instead of a fresh one (seed 0). The model is saved to OUT at the end.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from hacalib import prompts
from hacalib.io import read_json
from hacalib.models import build_toy_model, load_model, num_video_tokens, preprocess_videos, prompt_ids
from hacalib.scoring.requests import pad_sequences
from hacalib.toyworld.grammar import ENTAIL_INSTRUCTION, describe, np_of, realize
from hacalib.toyworld.hallucinate import hallucinate_flip
from hacalib.toyworld.questions import ORDINALS, all_questions
from hacalib.toyworld.render import render
from hacalib.toyworld.scene import ACTIONS, sample_scene
from hacalib.training.pretrain import toy_vocabulary


def _move_directions(scene, agent: int) -> list[str]:
    """The directions of the agent's moves, in the order they happen ("left", "up", ...)."""
    return [e.action[5:] for e in scene.events if e.agent == agent and e.action.startswith("move_")]


def ordinal_move_questions(scene) -> list[tuple[str, str, str]]:
    """Not in the world's grammar (diagnostic only): "where does X move first?" -> the direction of X's first move,
    kind "first"; the same for "second", for shapes that move more than once. Unlike "when", the answer follows from
    the video alone once the ordinal is read, so learning it does not start from an interaction of question and video."""
    out = []
    for i, agent in enumerate(scene.agents):
        moves = _move_directions(scene, i)
        if len(moves) >= 2:
            for ordinal, direction in zip(ORDINALS, moves):
                out.append((f"where does {np_of(agent).text()} move {ordinal}?", direction, ordinal))
    return out


def ordinal_yes_no(scene) -> list[tuple[str, str, str]]:
    """Diagnostic only, kind "first_yn": "does X move <direction> first?" about a shape that moves twice or more,
    "Yes" for its first move's direction and "No" for its second's: the order check of a flip pair, in a short
    question with the ordinal fixed."""
    out = []
    for i, agent in enumerate(scene.agents):
        moves = _move_directions(scene, i)
        if len(moves) >= 2:
            np_ = np_of(agent).text()
            out += [(f"does {np_} move {moves[0]} first?", "Yes", "first_yn"),
                    (f"does {np_} move {moves[1]} first?", "No", "first_yn")]
    return out


def flip_judgements(scene, rng) -> list[tuple[str, str, str]]:
    """Diagnostic only, kind "flip": the pretraining yes/no instruction about the scene's true description ("Yes")
    and about its event-order flip (`hallucinate_flip`, "No"); empty when the scene allows no flip. VideoCon's
    flip pair as a direct yes/no task: is the order judgement learnable when it is supervised?"""
    desc = describe(scene)
    flipped = hallucinate_flip(scene, desc, rng)
    if flipped is None:
        return []
    return [(ENTAIL_INSTRUCTION.format(caption=realize(desc)), "Yes", "flip"),
            (ENTAIL_INSTRUCTION.format(caption=realize(flipped)), "No", "flip")]


def questions(scene, kinds, rng=None) -> list[tuple[str, str, str]]:
    """The scene's questions of the given kinds: the world's grammar plus the diagnostic "first"/"second",
    "first_yn" and (with `rng`, which draws the flipped pair) "flip"."""
    extra = flip_judgements(scene, rng) if "flip" in kinds and rng is not None else []
    return [q for q in all_questions(scene) + ordinal_move_questions(scene) + ordinal_yes_no(scene) + extra
            if q[2] in kinds]


def new_scene(rng, agents, *, sampled, frames, canvas, events, moves_only, **_):
    """A fresh scene with `agents` shapes and events[0]..events[1] events (None when no layout was found)."""
    actions = tuple(a for a in ACTIONS if a.startswith("move_")) if moves_only else ACTIONS
    return sample_scene(rng, canvas=canvas, num_frames=frames, sampled=sampled, n_agents=agents,
                        n_events=int(rng.integers(events[0], events[1] + 1)), actions=actions)


def draw(rng, n, *, kinds, max_agents, pool=None, **scene_opts):
    """n (frames, question, answer, kind, shapes) tuples from fresh scenes (`new_scene`; or from `pool`, a list of
    scenes per number of shapes); frames are the model's sampled frames, uint8 (T, H, W, 3)."""
    out = []
    while len(out) < n:
        agents = int(rng.integers(1, max_agents + 1))
        if pool is not None:
            scene = pool[agents][int(rng.integers(len(pool[agents])))]
        else:
            scene = new_scene(rng, agents, **scene_opts)
        qs = questions(scene, kinds, rng) if scene is not None else []
        if not qs:
            continue
        q, a, k = qs[int(rng.integers(len(qs)))]
        out.append((render(scene)[scene_opts["sampled"]], q, a, k, agents))
    return out


def answer_logits(model, proc, items, nvt):
    """Logits at each item's last prompt token (right padding), the position that predicts its answer."""
    tok = proc.tokenizer
    x, att = pad_sequences(prompt_ids(tok, [prompts.qa_prompt(it[1]) for it in items], nvt), tok.pad_token_id, "right")
    video = preprocess_videos(proc, [it[0] for it in items])
    logits = model(input_ids=x, attention_mask=att, pixel_values_videos=video).logits
    return logits[torch.arange(len(items)), att.sum(1) - 1]


def question_loss(model, proc, items, nvt) -> torch.Tensor:
    """Cross-entropy of each item's one-word answer at its answer position (`answer_logits`), batch mean."""
    target = torch.tensor(proc.tokenizer.convert_tokens_to_ids([it[2] for it in items]))
    return torch.nn.functional.cross_entropy(answer_logits(model, proc, items, nvt), target)


def scene_options(world: str | Path, events: str, moves_only: bool) -> dict:
    """`new_scene`/`draw` keyword options for a built toy world: its sampled frames, frame count and canvas, the
    "min,max" events per scene and whether only move actions are drawn."""
    manifest = read_json(Path(world) / "toyworld.json")
    lo, hi = (int(v) for v in events.split(","))
    return dict(sampled=manifest["sampled_frames"], frames=manifest["config"]["num_frames"],
                canvas=manifest["config"]["canvas"], events=(lo, hi), moves_only=moves_only)


def held_out_accuracy(model, proc, held_out, nvt, kinds, max_agents) -> dict:
    """Greedy answer accuracy on `held_out`, keyed "kind/number of shapes"."""
    model.eval()
    with torch.no_grad():
        pred = torch.cat([answer_logits(model, proc, held_out[i : i + 64], nvt).argmax(1)
                          for i in range(0, len(held_out), 64)])
    model.train()
    ok = np.array([p == it[2] for p, it in zip(proc.tokenizer.convert_ids_to_tokens(pred.tolist()), held_out)])
    groups = {f"{k}/{n}": [it[3] == k and it[4] == n for it in held_out] for k in kinds for n in range(1, max_agents + 1)}
    return {key: round(float(ok[mask].mean()), 3) for key, mask in groups.items() if any(mask)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--world", default="cache/toyworld/default-seed0", help="a built toy world (vocabulary, frames)")
    ap.add_argument("--kinds", default="where", help="comma-separated question types: where, when, what, how; "
                    "diagnostic only: first, second (where does X move first / second?), "
                    "first_yn (does X move <direction> first?), "
                    "flip (yes/no on the true description or its event-order flip)")
    ap.add_argument("--agents", type=int, default=3)
    ap.add_argument("--events", default="1,1", help="min,max events per scene")
    ap.add_argument("--moves-only", action="store_true")
    ap.add_argument("--single-steps", type=int, default=0)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--init", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rope-theta", type=float, default=None, help="fresh model only: the Llama's rotary base "
                    "(transformers' default 10000); saved in the config, so --init keeps it")
    ap.add_argument("--text-layers", type=int, default=2, help="fresh model only: the Llama's depth (default 2, "
                    "the toy preset's)")
    ap.add_argument("--held-out", type=int, default=256, help="fixed held-out scenes (seed 123)")
    ap.add_argument("--pool", type=int, default=0, help="train on a fixed pool of this many scenes per shape count "
                    "(0: a fresh scene every time)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    kinds = args.kinds.split(",")
    scene_opts = scene_options(args.world, args.events, args.moves_only)
    if args.init:
        model, proc = load_model(args.init, dtype="float32")
    else:
        model, proc = build_toy_model(toy_vocabulary(args.world), 0, text_layers=args.text_layers)
        if args.rope_theta:
            from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

            lm = model.model.language_model
            lm.config.rope_parameters["rope_theta"] = args.rope_theta
            lm.rotary_emb = LlamaRotaryEmbedding(config=lm.config)
    nvt = num_video_tokens(proc, len(scene_opts["sampled"]))
    held_out = draw(np.random.default_rng(123), args.held_out, kinds=kinds, max_agents=args.agents, **scene_opts)
    pool = None
    if args.pool:
        prng = np.random.default_rng(7)
        pool = {n: [] for n in range(1, args.agents + 1)}
        for n in pool:
            while len(pool[n]) < args.pool:
                sc = new_scene(prng, n, **scene_opts)
                if sc is not None and questions(sc, kinds, prng):
                    pool[n].append(sc)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 50))
    rng, t0 = np.random.default_rng(0), time.time()
    model.train()
    for step in range(1, args.steps + 1):
        items = draw(rng, 32, kinds=kinds, max_agents=1 if step <= args.single_steps else args.agents, pool=pool,
                     **scene_opts)
        loss = question_loss(model, proc, items, nvt)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 250 == 0 or step == args.steps:
            by = held_out_accuracy(model, proc, held_out, nvt, kinds, args.agents)
            print(f"step {step} loss {loss.item():.3f} held-out {by} {time.time() - t0:.0f}s", flush=True)
    model.eval()
    model.save_pretrained(args.out)
    proc.save_pretrained(args.out)
    return {"step": args.steps, "loss": loss.item(), "held_out": by}


if __name__ == "__main__":
    main()
