"""Frames of a scene as numpy arrays: shapes drawn with 4x4 supersampling on a dark canvas.

May import: numpy, its own package's modules.
"""

from __future__ import annotations

import numpy as np

from .scene import Scene, trajectory

RGB = {
    "red": (230, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 100, 255),
    "yellow": (240, 220, 40),
    "white": (240, 240, 240),
}
BACKGROUND = (16, 16, 16)
SUPERSAMPLE = 4  # soft edges: less aliasing for the model, and less for the codec to get wrong


def shape_mask(shape: str, dx: np.ndarray, dy: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Boolean mask of `shape` for offsets (dx, dy) from its centre and diameter d (all broadcastable).

    The four shapes are drawn to differ as much as possible inside the same d x d box: a disc, a full
    square, an upward triangle (apex at the top, flat base) and a plus-shaped cross with arms d/3 wide.
    """
    h = d / 2
    if shape == "circle":
        return dx * dx + dy * dy <= h * h
    if shape == "square":
        return (np.abs(dx) <= h * 0.9) & (np.abs(dy) <= h * 0.9)
    if shape == "triangle":
        frac = (dy + h) / np.maximum(d, 1e-9)  # 0 at the apex row, 1 at the base
        return (dy >= -h) & (dy <= h) & (np.abs(dx) <= frac * h)
    if shape == "cross":
        inside = (np.abs(dx) <= h) & (np.abs(dy) <= h)
        return inside & ((np.abs(dx) <= d / 6) | (np.abs(dy) <= d / 6))
    raise ValueError(f"unknown shape {shape!r}")


def render(scene: Scene) -> np.ndarray:
    """All frames of `scene`: uint8 array (num_frames, canvas, canvas, 3)."""
    T, c, s = scene.num_frames, scene.canvas, SUPERSAMPLE
    traj = trajectory(scene)
    # sub-pixel sample positions, (c*s,) each; pixel i covers [i, i+1)
    pos = (np.arange(c * s, dtype=np.float64) + 0.5) / s
    img = np.empty((T, c, c, 3), dtype=np.float64)
    img[:] = BACKGROUND
    for i, agent in enumerate(scene.agents):
        x, y, d = (traj[:, i, k][:, None, None] for k in range(3))
        m = shape_mask(agent.shape, pos[None, None, :] - x, pos[None, :, None] - y, d)
        cover = m.reshape(T, c, s, c, s).mean(axis=(2, 4))[..., None]  # fraction of the pixel covered
        img = img * (1 - cover) + cover * np.asarray(RGB[agent.color], dtype=np.float64)
    return np.rint(img).astype(np.uint8)
