"""experiments/motion/fresh_scenes.py (PROTOCOL's motion diagnostic) still runs: a few steps on the smoke world."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

from hacalib.models import load_model
from hacalib.toyworld import build_world

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "motion" / "fresh_scenes.py"


def _script():
    spec = importlib.util.spec_from_file_location("fresh_scenes", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_curriculum_run_reports_held_out_accuracy_per_shape_count_and_saves_a_loadable_model(tmp_path):
    world = tmp_path / "world"
    build_world(world, size="smoke", seed=0)
    out = tmp_path / "model"
    result = _script().main([str(out), "--world", str(world), "--kinds", "where,when", "--events", "1,3",
                             "--single-steps", "1", "--steps", "2", "--held-out", "24", "--pool", "3",
                             "--rope-theta", "500"])
    assert result["step"] == 2 and math.isfinite(result["loss"])
    assert result["held_out"] and all(k.split("/")[0] in ("where", "when") for k in result["held_out"])
    assert all(0.0 <= v <= 1.0 for v in result["held_out"].values())
    model, processor = load_model(out, dtype="float32")
    assert model.config.model_type == "video_llava"
    assert model.config.text_config.rope_parameters["rope_theta"] == 500  # kept through save/reload


def test_draw_asks_only_the_requested_question_types_about_single_shape_scenes_when_asked(tmp_path):
    import numpy as np

    mod = _script()
    items = mod.draw(np.random.default_rng(0), 6, sampled=[0, 2, 4, 6, 8, 10, 12, 14], frames=16, canvas=32,
                     kinds=["where"], max_agents=1, events=(1, 1), moves_only=True)
    assert len(items) == 6
    for frames, question, answer, kind, shapes in items:
        assert frames.shape == (8, 32, 32, 3) and frames.dtype == np.uint8 and kind == "where" and shapes == 1
        assert question.startswith("where does") and answer in ("left", "right", "up", "down")
