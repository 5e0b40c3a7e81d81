"""experiments/motion/ (PROTOCOL's motion and order diagnostics) still runs: a few steps on the smoke world."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

from hacalib.io import read_json
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


def test_ordinal_move_questions_name_each_move_of_a_shape_that_moves_more_than_once():
    from hacalib.toyworld.scene import Agent, Event, Scene

    circle, square = Agent("circle", "red", "big", 8.0, 8.0), Agent("square", "blue", "small", 24.0, 24.0)
    scene = Scene(agents=(circle, square), canvas=32, num_frames=16, events=(
        Event(0, "move_left", "slowly", 2, 8), Event(1, "grow", "slowly", 8, 14), Event(0, "move_up", "quickly", 8, 14)))
    mod = _script()
    assert mod.ordinal_move_questions(scene) == [
        ("where does the big red circle move first?", "left", "first"),
        ("where does the big red circle move second?", "up", "second"),
    ]
    # the square grows once and never moves: no ordinal question about it; "when" comes from the world's grammar
    assert [q for q, _, _ in mod.questions(scene, ["second", "when"])] == [
        "when does the big red circle move left?", "when does the small blue square grow?",
        "when does the big red circle move up?", "where does the big red circle move second?"]
    assert [a for _, a, _ in mod.questions(scene, ["when"])] == ["first", "second", "third"]


def test_flip_judgements_pair_the_true_description_with_its_order_flip_and_first_yn_asks_the_first_move():
    import numpy as np

    from hacalib.toyworld.scene import Agent, Event, Scene

    circle = Agent("circle", "red", "big", 8.0, 8.0)
    two = Scene(agents=(circle,), canvas=32, num_frames=16, events=(
        Event(0, "move_left", "slowly", 2, 8), Event(0, "move_up", "quickly", 8, 14)))
    mod = _script()
    (true_q, yes, k1), (flip_q, no, k2) = mod.flip_judgements(two, np.random.default_rng(0))
    assert (yes, no, k1, k2) == ("Yes", "No", "flip", "flip")
    assert "moves left slowly, then it moves up quickly" in true_q
    assert "moves up quickly, then it moves left slowly" in flip_q
    one = Scene(agents=(circle,), canvas=32, num_frames=16, events=(Event(0, "move_left", "slowly", 2, 8),))
    assert mod.flip_judgements(one, np.random.default_rng(0)) == []  # one event: nothing to flip
    assert mod.questions(two, ["flip"]) == []  # without a generator no flip is drawn
    assert [a for _, a, _ in mod.questions(two, ["flip"], np.random.default_rng(0))] == ["Yes", "No"]
    assert mod.questions(two, ["first_yn"]) == [("does the big red circle move left first?", "Yes", "first_yn"),
                                                 ("does the big red circle move up first?", "No", "first_yn")]


def test_mix_with_motion_trains_on_both_losses_and_evaluates_the_world(tmp_path):
    world = tmp_path / "world"
    build_world(world, size="smoke", seed=0)
    init = tmp_path / "init"
    _script().main([str(init), "--world", str(world), "--steps", "1", "--held-out", "8", "--text-layers", "3"])
    assert load_model(init, dtype="float32")[0].config.text_config.num_hidden_layers == 3
    spec = importlib.util.spec_from_file_location("mix_with_motion", SCRIPT.with_name("mix_with_motion.py"))
    mix = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mix)
    result = mix.main([str(tmp_path / "mixed"), "--init", str(init), "--world", str(world), "--steps", "2",
                       "--held-out", "12", "--evaluate", "--finetune", "entail", "--finetune-steps", "3"])
    assert result["step"] == 2 and result["held_out"]
    world_eval = result["world"]
    assert set(world_eval["pairwise_by_type"]) <= {"object", "action", "attribute", "relation", "hallucination",
                                                   "counting", "flip"}
    assert 0.0 <= world_eval["pairwise"] <= 1.0 and world_eval["qa_exact"]
    assert load_model(tmp_path / "mixed", dtype="float32")[0].config.text_config.num_hidden_layers == 3
    assert set(result["entail"]) == set(world_eval)  # the fine-tuned model, evaluated the same way
    assert read_json(tmp_path / "mixed-entail" / "finetune.json")["train_config"]["max_steps"] == 3
    # --steps 0: the --init model as it is (no mix step), still evaluated
    as_is = mix.main([str(tmp_path / "as_is"), "--init", str(init), "--world", str(world), "--steps", "0",
                      "--held-out", "12"])
    assert as_is["step"] == 0 and as_is["held_out"]
