"""Frames: shapes are told apart at 32 px, and every event shows in the frames the model samples."""

from __future__ import annotations

import itertools

import numpy as np

from hacalib.data.video import sample_frame_indices
from hacalib.toyworld.render import RGB, render, shape_mask
from hacalib.toyworld.scene import SHAPES, SIZE_FRAC, Agent, Event, Scene, event_windows, sample_scene, trajectory

SAMPLED = [int(i) for i in sample_frame_indices(16, 8)]


def _mask(shape: str, d: float) -> np.ndarray:
    pos = np.arange(32) + 0.5
    return shape_mask(shape, pos[None, :] - 16, pos[:, None] - 16, np.float64(d))


def test_small_shapes_differ_in_many_pixels():
    d = SIZE_FRAC["small"] * 32  # the smallest initial size, 8 px
    for a, b in itertools.combinations(SHAPES, 2):
        differ = int((_mask(a, d) != _mask(b, d)).sum())
        assert differ >= 12, (a, b, differ)  # at least ~20% of the 8x8 box


def test_event_windows_have_a_sampled_frame_inside():
    for n in (1, 2, 3):
        wins = event_windows(n, SAMPLED)
        assert all(e0 <= s1 for (_, e0), (s1, _) in zip(wins, wins[1:]))
        for s, e in wins:
            assert s in SAMPLED and e in SAMPLED and any(s < f < e for f in SAMPLED)


def test_every_event_changes_the_sampled_frames():
    rng = np.random.default_rng(0)
    checked = 0
    while checked < 60:
        scene = sample_scene(rng, canvas=32, num_frames=16, sampled=SAMPLED, n_agents=2, n_events=3)
        if scene is None:
            continue
        frames, traj = render(scene), trajectory(scene)
        for e in scene.events:
            inside = [f for f in SAMPLED if e.start <= f <= e.end]
            # the agent's state differs between sampled frames of its window, and so do the pixels
            assert np.abs(np.diff(traj[inside, e.agent], axis=0)).max() >= 1.0
            assert any((frames[a] != frames[b]).any() for a, b in zip(inside, inside[1:]))
        checked += 1


def test_render_draws_the_colour_at_the_centre():
    agent = Agent("square", "red", "big", 16.0, 16.0)
    scene = Scene((agent,), (Event(0, "grow", "slowly", 2, 14),), 32, 16)
    frames = render(scene)
    assert frames.shape == (16, 32, 32, 3) and frames.dtype == np.uint8
    assert tuple(frames[0, 16, 16]) == RGB["red"]
    assert (frames[15] != frames[0]).any()
