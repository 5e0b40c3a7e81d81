"""Supervised probe training of the toy CLIP video tower from scene ground truth ("perception by construction").

Not part of `hacalib`. Fresh scenes from the toy world's own sampler (1-3 shapes, 1-3 events, all actions), rendered
by its renderer, the model's sampled frames through the model's own processor. Linear heads on the tower's
`hidden_states[-1]` (what `vision_feature_layer=-1` hands the projector):

* every patch token: the colour / shape / size word of the shape that covers most of the patch (or "none"; a
  shape counts when it covers >= 5% of the patch) and that shape's current centre x, y and diameter (regression);
* every frame's CLS token: for each of the 20 (shape, colour) pairs whether it is in the frame, its size word and
  its current x, y, diameter (masked to present pairs).

So after training the token VALUES say what is there and where it is (CLS: per named identity). The heads are
thrown away; the tower is then frozen by the pretraining driver (`pretrain_driver.py`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hacalib.io import read_json
from hacalib.models import preprocess_videos
from hacalib.toyworld.render import SUPERSAMPLE, render, shape_mask
from hacalib.toyworld.scene import ACTIONS, COLORS, SHAPES, SIZES, sample_scene, trajectory

PAIRS = [(s, c) for s in SHAPES for c in COLORS]
COVER_MIN = 0.05


def scene_options(world: str | Path) -> dict:
    m = read_json(Path(world) / "toyworld.json")
    return dict(sampled=m["sampled_frames"], num_frames=m["config"]["num_frames"], canvas=m["config"]["canvas"])


def new_scene(rng, opts):
    while True:
        sc = sample_scene(rng, canvas=opts["canvas"], num_frames=opts["num_frames"], sampled=opts["sampled"],
                          n_agents=int(rng.integers(1, 4)), n_events=int(rng.integers(1, 4)), actions=ACTIONS)
        if sc is not None:
            return sc


def targets(scene, sampled, patch: int = 8) -> dict:
    """Per sampled frame: patch labels (colour, shape, size, occupancy) and regression (x, y, d) of the occupant;
    CLS labels per (shape, colour) pair."""
    c, s = scene.canvas, SUPERSAMPLE
    traj = trajectory(scene)[sampled]  # (T, n, 3)
    T, n = traj.shape[:2]
    pos = (np.arange(c * s, dtype=np.float64) + 0.5) / s
    g = c // patch
    cover = np.zeros((n, T, g, g))
    for i, a in enumerate(scene.agents):
        x, y, d = (traj[:, i, k][:, None, None] for k in range(3))
        m = shape_mask(a.shape, pos[None, None, :] - x, pos[None, :, None] - y, d)
        cover[i] = m.reshape(T, g, patch * s, g, patch * s).mean(axis=(2, 4))
    occ = cover.argmax(0)  # (T, g, g)
    has = cover.max(0) >= COVER_MIN
    col = np.full((T, g * g), len(COLORS)), np.full((T, g * g), len(SHAPES)), np.full((T, g * g), len(SIZES))
    reg = np.zeros((T, g * g, 3), dtype=np.float32)
    occ, has = occ.reshape(T, -1), has.reshape(T, -1)
    norm = np.array([[c, c, c]], dtype=np.float64)
    for i, a in enumerate(scene.agents):
        sel = has & (occ == i)
        col[0][sel] = COLORS.index(a.color)
        col[1][sel] = SHAPES.index(a.shape)
        col[2][sel] = SIZES.index(a.size)
        t_idx = np.nonzero(sel)[0]
        reg[sel] = scale(traj[t_idx, i] / norm)
    cls_present = np.zeros((T, len(PAIRS)), dtype=np.float32)
    cls_size = np.zeros((T, len(PAIRS)), dtype=np.float32)
    cls_reg = np.zeros((T, len(PAIRS), 3), dtype=np.float32)
    for i, a in enumerate(scene.agents):
        p = PAIRS.index((a.shape, a.color))
        cls_present[:, p] = 1
        cls_size[:, p] = SIZES.index(a.size)
        cls_reg[:, p] = scale(traj[:, i] / norm)
    return dict(color=col[0], shape=col[1], size=col[2], has=has, reg=reg, cls_present=cls_present,
                cls_size=cls_size, cls_reg=cls_reg)


def scale(xyd: np.ndarray) -> np.ndarray:
    """(x/c, y/c, d/c) -> roughly unit-variance regression targets."""
    return np.stack([(xyd[..., 0] - 0.5) * 4, (xyd[..., 1] - 0.5) * 4, (xyd[..., 2] - 0.3) * 10], -1)


def batch(rng, n, opts, proc):
    scenes = [new_scene(rng, opts) for _ in range(n)]
    frames = [render(sc)[opts["sampled"]] for sc in scenes]
    video = preprocess_videos(proc, frames)  # (B, T, 3, H, W)
    tg = [targets(sc, opts["sampled"]) for sc in scenes]
    out = {k: torch.as_tensor(np.stack([t[k] for t in tg])).flatten(0, 1) for k in tg[0]}  # (B*T, ...)
    return video.flatten(0, 1), out


class Heads(torch.nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.patch = torch.nn.Linear(hidden, len(COLORS) + 1 + len(SHAPES) + 1 + len(SIZES) + 1 + 3)
        self.cls = torch.nn.Linear(hidden, len(PAIRS) * 5)

    def forward(self, h):
        return self.patch(h[:, 1:]), self.cls(h[:, 0]).view(h.shape[0], len(PAIRS), 5)


def losses(heads, h, tg) -> tuple[torch.Tensor, dict]:
    p, c = heads(h)
    nc, ns, nz = len(COLORS) + 1, len(SHAPES) + 1, len(SIZES) + 1
    lc = F.cross_entropy(p[..., :nc].flatten(0, 1), tg["color"].flatten())
    ls = F.cross_entropy(p[..., nc:nc + ns].flatten(0, 1), tg["shape"].flatten())
    lz = F.cross_entropy(p[..., nc + ns:nc + ns + nz].flatten(0, 1), tg["size"].flatten())
    has = tg["has"].float()
    lr = (((p[..., -3:] - tg["reg"]) ** 2).sum(-1) * has).sum() / has.sum().clamp(min=1)
    pres = tg["cls_present"]
    lp = F.binary_cross_entropy_with_logits(c[..., 0], pres)
    lsz = (F.binary_cross_entropy_with_logits(c[..., 1], tg["cls_size"], reduction="none") * pres).sum() / pres.sum()
    lcr = (((c[..., 2:] - tg["cls_reg"]) ** 2).sum(-1) * pres).sum() / pres.sum()
    total = lc + ls + lz + lr + lp * 5 + lsz + lcr
    with torch.no_grad():
        occ = tg["has"]
        m = {
            "patch_colour": (p[..., :nc].argmax(-1) == tg["color"])[occ].float().mean().item(),
            "patch_shape": (p[..., nc:nc + ns].argmax(-1) == tg["shape"])[occ].float().mean().item(),
            "patch_size": (p[..., nc + ns:nc + ns + nz].argmax(-1) == tg["size"])[occ].float().mean().item(),
            # regression targets are (x/c - 0.5) * 4, so px error = err * c / 4 = err * 8 at c = 32
            "patch_xy_px": (((p[..., -3:-1] - tg["reg"][..., :2]) ** 2).sum(-1)[occ].mean().sqrt() * 8).item(),
            "cls_present": ((c[..., 0] > 0).float() == pres).float().mean().item(),
            "cls_xy_px": ((((c[..., 2:4] - tg["cls_reg"][..., :2]) ** 2).sum(-1) * pres).sum() / pres.sum()).sqrt().item() * 8,
            "cls_d_px": ((((c[..., 4] - tg["cls_reg"][..., 2]) ** 2) * pres).sum() / pres.sum()).sqrt().item() * 3.2,
        }
    return total, m


def train_probe(model, proc, world: str | Path, steps: int, *, batch_scenes: int = 16, lr: float = 2e-3,
                seed: int = 0, log=print) -> dict:
    """Train `model.model.video_tower` (and throw-away linear heads) on the probe objective; returns held-out
    metrics. The tower is left with requires_grad False."""
    opts = scene_options(world)
    tower = model.model.video_tower
    heads = Heads(tower.config.hidden_size)
    tower.requires_grad_(True)
    tower.post_layernorm.requires_grad_(False)
    params = [p for p in tower.parameters() if p.requires_grad] + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) * 0.5 * (1 + np.cos(np.pi * min(s, steps) / steps)))
    held_video, held_tg = batch(np.random.default_rng(10_000 + seed), 64, opts, proc)
    rng, t0 = np.random.default_rng(seed), time.time()

    def feats(v):
        return tower(v, output_hidden_states=True, return_dict=True).hidden_states[-1]

    tower.train()
    for step in range(1, steps + 1):
        v, tg = batch(rng, batch_scenes, opts, proc)
        loss, _ = losses(heads, feats(v), tg)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % 250 == 0 or step == steps:
            with torch.no_grad():
                hl, m = losses(heads, feats(held_video), held_tg)
            log(f"probe step {step} loss {loss.item():.3f} held-out {hl.item():.3f} "
                + " ".join(f"{k} {v:.3f}" for k, v in m.items()) + f" {time.time() - t0:.0f}s")
    tower.eval()
    tower.requires_grad_(False)
    return {"held_out": m, "seconds": time.time() - t0}
