"""Figures: frame strips of videos, loss curves, metric-vs-parameter curves. Each returns a matplotlib Figure.

May import: matplotlib, numpy.
"""

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


def loss_curves(histories: dict, title: str = "training loss"):
    """One line per run: `histories[label]` is a list of metric records with `step` and `loss`."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for label, records in histories.items():
        ax.plot([r["step"] for r in records], [r["loss"] for r in records], label=label, lw=1.2)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


METRIC_LABELS = {"classic_vle": "ClassicVLE", "strict_vle": "StrictVLE", "map": "mAP", "map_videocon": "mAP (VideoCon)",
                 "contains": "accuracy (answer contained)", "exact": "accuracy (exact match)",
                 "pairwise_acc": "pairwise accuracy"}


def _metric_label(metric: str, scale: float) -> str:
    label = METRIC_LABELS.get(metric, metric.replace("_", " "))
    return f"{label} (%)" if scale == 100 else label


def grouped_bars(summary, group: str, metric: str, *, title: str, scale: float = 100.0, labels: dict | None = None,
                 chance: float | dict | None = None, chance_label: str = "chance"):
    """Bars per (group value, row) with 95% CI whiskers, from a `hacalib.report.tables.summarize_runs` frame.

    `chance`: a reference level drawn as a dashed line (one for all groups, or one per group value).
    """
    import matplotlib.pyplot as plt

    sel = summary[summary["metric"] == metric]
    groups = list(dict.fromkeys(sel[group]))
    rows = list(dict.fromkeys(sel["row"]))
    width = 0.8 / max(len(rows), 1)
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(groups) + 2), 3.6))
    for i, row in enumerate(rows):
        r = sel[sel["row"] == row].set_index(group).reindex(groups)
        x = np.arange(len(groups)) + (i - (len(rows) - 1) / 2) * width
        val = r["value"].to_numpy(dtype=float) * scale
        err = np.vstack([val - r["ci_low"].to_numpy(dtype=float) * scale,
                         r["ci_high"].to_numpy(dtype=float) * scale - val])
        ax.bar(x, val, width, yerr=np.nan_to_num(err), capsize=2, label=(labels or {}).get(row, row))
    if chance is not None:
        for j, g in enumerate(groups):
            level = chance[g] if isinstance(chance, dict) else chance
            ax.hlines(level * scale, j - 0.45, j + 0.45, colors="black", linestyles="dashed", linewidth=1,
                      label=chance_label if j == 0 else None)
    ax.set_xticks(np.arange(len(groups)), groups, rotation=20, fontsize=8)
    ax.set_ylabel(_metric_label(metric, scale))
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncol=len(rows) + (chance is not None), loc="upper center", bbox_to_anchor=(0.5, -0.22),
              frameon=False)
    fig.tight_layout()
    return fig


def metric_curves(df, x: str, group: str, *, title: str, xlabel: str, scale: float = 100.0,
                  ylabel: str = "ClassicVLE (%)", chance: float | None = None, ncols: int = 3):
    """Small multiples: one panel per `group` value, `value` against `x` with its 95% CI band (ci_low/ci_high)."""
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys(df[group]))
    nrows = int(np.ceil(len(groups) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.0 * ncols, 2.3 * nrows), sharex=True, squeeze=False)
    for ax, g in zip(axes.flat, groups):
        d = df[df[group] == g].sort_values(x)
        xs = d[x].to_numpy(dtype=float) * 100
        ax.plot(xs, d["value"] * scale, marker="o", ms=3, lw=1.2, color="C0")
        ax.fill_between(xs, d["ci_low"] * scale, d["ci_high"] * scale, alpha=0.2, color="C0")
        if chance is not None:
            ax.axhline(chance * scale, color="black", ls="--", lw=0.8)
        ax.set_title(str(g), fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(groups):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel, fontsize=8)
    for ax in axes[-1, :]:
        ax.set_xlabel(xlabel, fontsize=8)
    fig.suptitle(title + ("  (dashed: chance)" if chance is not None else ""), fontsize=10)
    fig.tight_layout()
    return fig
