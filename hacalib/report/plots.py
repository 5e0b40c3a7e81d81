"""Figures: frame strips of videos, loss curves, estimates with 95% CIs, metric-vs-parameter curves.

Each returns a matplotlib Figure. The statistical figures use seaborn's style, palette and facets; their intervals
are the ones the tables report (`hacalib.metrics.nested_interval`), drawn as given, never recomputed by seaborn.

May import: matplotlib, seaborn, numpy, `.tables` (row names).
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


def loss_curves(histories: dict, title: str = "training loss"):
    """One line per run: `histories[label]` is a list of metric records with `step` and `loss`; legend beside the
    axes, off the curves."""
    import matplotlib.pyplot as plt

    axes_style, context = _style()
    with axes_style, context:
        fig, ax = plt.subplots(figsize=(7, 3.4))
        for label, records in histories.items():
            ax.plot([r["step"] for r in records], [r["loss"] for r in records], label=label, lw=1.3)
        ax.set_xlabel("training step")
        ax.set_ylabel("loss (cross-entropy on target tokens)")
        ax.set_title(title)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        fig.tight_layout()
    return fig


METRIC_LABELS = {"classic_vle": "ClassicVLE", "strict_vle": "StrictVLE", "map": "mAP", "map_videocon": "mAP (VideoCon)",
                 "contains": "accuracy (answer contained)", "exact": "accuracy (exact match)",
                 "first_answer": "accuracy (first answer)",
                 "pairwise_acc": "pairwise accuracy"}


def _metric_label(metric: str, scale: float) -> str:
    label = METRIC_LABELS.get(metric, metric.replace("_", " "))
    return f"{label} (%)" if scale == 100 else label


def _style():
    """The look of every statistical figure: seaborn's white grid, paper context, colour-blind palette."""
    import seaborn as sns

    return sns.axes_style("whitegrid"), sns.plotting_context("paper", font_scale=1.1)


def row_palette(rows: Sequence[str]) -> dict:
    """One fixed colour per model row (the same row has the same colour in every figure)."""
    import seaborn as sns

    from .tables import ROWS

    known = list(ROWS) + [r for r in rows if r not in ROWS]
    colours = sns.color_palette("colorblind", len(known))
    return {r: colours[known.index(r)] for r in rows}


def interval_points(summary, group: str, metric: str, *, title: str, scale: float = 100.0,
                    labels: dict | None = None, chance: float | dict | None = None, chance_label: str = "chance",
                    ylabel: str | None = None, panel_height: float = 3.8, palette: dict | None = None):
    """Point + 95% CI per (group value, model row), from a `hacalib.report.tables.summarize_runs` frame; a summary
    with a `family` column gets one panel per model family, one above the other, on the same axis range.

    Points, not bars: the axis spans the data and the reference level (not 0), so half-point differences stay
    visible. `chance`: a reference level per group value (or one for all), drawn as a dashed black segment.
    The legend sits below the axes, off the data.
    """
    import matplotlib.pyplot as plt

    from .tables import FAMILY_LABELS

    sel = summary[summary["metric"] == metric]
    groups = list(dict.fromkeys(sel[group]))
    families = list(dict.fromkeys(sel["family"])) if "family" in sel.columns else [None]
    rows = list(dict.fromkeys(sel["row"]))
    axes_style, context = _style()
    with axes_style, context:
        fig, axes = plt.subplots(len(families), 1, figsize=(max(6.5, 1.1 * len(groups) + 2.5), panel_height * len(families)),
                                 squeeze=False, sharey=True)
        for ax, family in zip(axes[:, 0], families):
            part = sel if family is None else sel[sel["family"] == family]
            _intervals(ax, part, group, groups, rows, scale, labels, chance, chance_label, palette)
            ax.set_ylabel(ylabel or _metric_label(metric, scale))
            ax.set_title(title if family is None else f"{FAMILY_LABELS.get(family, family)}: {title}")
        low, high = axes[0, 0].get_ylim()  # shared by every panel
        axes[0, 0].set_ylim(low, high + 0.06 * (high - low))  # a point at the top (100%) stays whole
        fig.tight_layout()
    return fig


def _intervals(ax, sel, group: str, groups: list, rows: list, scale: float, labels: dict | None,
               chance: float | dict | None, chance_label: str, palette: dict | None = None) -> None:
    """One panel of `interval_points`: every row's points and intervals per group value, chance segments, legend."""
    colours = palette or row_palette(rows)
    step = 0.7 / max(len(rows), 1)
    for i, row in enumerate(rows):
        r = sel[sel["row"] == row].set_index(group).reindex(groups)
        x = np.arange(len(groups)) + (i - (len(rows) - 1) / 2) * step
        val = r["value"].to_numpy(dtype=float) * scale
        err = np.vstack([val - r["ci_low"].to_numpy(dtype=float) * scale,
                         r["ci_high"].to_numpy(dtype=float) * scale - val])
        ax.errorbar(x, val, yerr=np.nan_to_num(err), fmt="o", ms=5, capsize=3, lw=1.4, color=colours[row],
                    label=(labels or {}).get(row, row))
    if chance is not None:
        for j, g in enumerate(groups):
            level = chance[g] if isinstance(chance, dict) else chance
            ax.hlines(level * scale, j - 0.45, j + 0.45, colors="black", linestyles="dashed", linewidth=1.1,
                      label=chance_label if j == 0 else None)
    ax.set_xticks(np.arange(len(groups)), [str(g).replace("_", " ") for g in groups],
                  rotation=20 if len(groups) > 4 else 0)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.grid(axis="x", visible=False)  # groups are categories: vertical lines would cut through their points
    ax.legend(ncol=len(rows) + (chance is not None), loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)


def metric_curves(df, x: str, group: str, *, title: str, xlabel: str, scale: float = 100.0,
                  ylabel: str = "ClassicVLE (%)", chance: float | None = None, ncols: int = 3):
    """Small multiples (a seaborn FacetGrid): one panel per `group` value, `value` against `x` (a fraction, shown in
    %) with its 95% CI band (ci_low/ci_high); every panel on the same y-axis (noise must not look like structure
    because one panel's axis is narrower), chance dashed."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from .tables import FAMILY_LABELS

    data = df.assign(_x=df[x].astype(float) * 100, _v=df["value"] * scale, _lo=df["ci_low"] * scale,
                     _hi=df["ci_high"] * scale)
    # one curve per model family (a `family` column), each in its own colour
    families = list(dict.fromkeys(df["family"])) if "family" in df.columns else [None]
    colours = dict(zip(families, sns.color_palette("colorblind")[2:]))

    def panel(data, **_):
        ax = plt.gca()
        for family in families:
            d = (data if family is None else data[data["family"] == family]).sort_values("_x")
            ax.plot(d["_x"], d["_v"], marker="o", ms=4, lw=1.4, color=colours[family],
                    label=None if family is None else FAMILY_LABELS.get(family, family))
            ax.fill_between(d["_x"], d["_lo"], d["_hi"], alpha=0.2, color=colours[family], lw=0)
        if chance is not None:
            ax.axhline(chance * scale, color="black", ls="--", lw=0.9)

    axes_style, context = _style()
    with axes_style, context:
        grid = sns.FacetGrid(data, col=group, col_wrap=min(ncols, data[group].nunique()), height=2.4, aspect=1.25,
                             sharey=True, col_order=list(dict.fromkeys(data[group])))
        grid.map_dataframe(panel)
        grid.set_titles("{col_name}")
        grid.set_axis_labels(xlabel, ylabel)
        grid.figure.suptitle(title + ("  (dashed: chance)" if chance is not None else ""), y=1.02)
        grid.figure.tight_layout()
        if families != [None]:  # below the panels, off every curve
            grid.add_legend()
            sns.move_legend(grid, "upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(families), title=None,
                            frameon=False)
    return grid.figure


def readout_points(readouts, labels: dict, *, title: str, chance: float = 0.5):
    """`interval_points` for the readouts of notebook 07 (a `summarize_runs` table with metrics such as p_yes,
    loglik and loglik_other_video per misalignment type): one panel per run (family and row), one point and
    interval per readout, the other-video readout as the text-only control and chance dashed."""
    from .tables import row_label

    families = readouts["family"] if "family" in readouts.columns else [None] * len(readouts)
    panels = readouts.assign(family=[row_label(r, f) for r, f in zip(readouts["row"], families)],
                             row=readouts["metric"], metric="pairwise")
    import seaborn as sns

    blue, orange, *_ = sns.color_palette("colorblind")
    # the alignment score, the captioning head, and the text-only control in grey
    palette = dict(zip(labels, [blue, orange, (0.6, 0.6, 0.6)]))
    return interval_points(panels, "misalignment", "pairwise", title=title, labels=labels, chance=chance,
                           ylabel="pairwise accuracy (%)", panel_height=2.7, palette=palette)
