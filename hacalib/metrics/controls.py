"""The "another video" of a text-prior control: the same captions scored on a video that is not theirs.

A perception readout (`hacalib.report.perception`) compares a model's preference for the true caption on its own video
with the same preference on another video; both the scorers (`hacalib.scoring.evaluate`) and the report pick that
video by one rule, here.

May import: nothing of hacalib.
"""

from __future__ import annotations

from typing import Sequence


def other_video(videos: Sequence[str], avoid: Sequence[set] | None = None) -> list[int]:
    """For each position, the index of the next video (cyclically) that is another video and, with `avoid`, none of
    the videos in `avoid[i]`: the "another video" of a log-likelihood control. Deterministic; an item whose every
    other video is excluded keeps its own (its control then says nothing, and the caller sees `other == own`)."""
    n = len(videos)
    out = []
    for i, own in enumerate(videos):
        skip = {own} | (avoid[i] if avoid is not None else set())
        out.append(next((j % n for j in range(i + 1, i + n) if videos[j % n] not in skip), i))
    return out
