"""Figures: frame strips of videos, loss curves, metric-vs-parameter curves. Each returns a matplotlib Figure."""

from __future__ import annotations

import textwrap
from typing import Sequence

import numpy as np


def frame_strip(frames: np.ndarray) -> np.ndarray:
    """Concatenate (T,H,W,3) frames left to right with a 1-pixel white gap: one (H, T*(W+1)-1, 3) image."""
    t, h, w, c = frames.shape
    strip = np.full((h, t * (w + 1) - 1, c), 255, dtype=np.uint8)
    for i, f in enumerate(frames):
        strip[:, i * (w + 1): i * (w + 1) + w] = f
    return strip


def video_strips(videos: Sequence[np.ndarray], captions: Sequence[str], *, width: float = 10.0,
                 wrap: int = 110):
    """One row per video: its sampled frames as a strip, the caption (wrapped) as the row title."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(videos), 1, figsize=(width, 1.45 * len(videos)), squeeze=False)
    for ax, frames, caption in zip(axes[:, 0], videos, captions):
        ax.imshow(frame_strip(np.asarray(frames)), interpolation="nearest")
        ax.set_title("\n".join(textwrap.wrap(caption, wrap)), fontsize=8, loc="left")
        ax.axis("off")
    fig.tight_layout()
    return fig


def bar_shares(df, label_col: str, value_col: str, title: str):
    """A horizontal bar chart of one column (e.g. misalignment-type shares)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 0.35 * len(df) + 1))
    ax.barh(df[label_col].astype(str), df[value_col])
    ax.invert_yaxis()
    ax.set_xlabel(value_col)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
