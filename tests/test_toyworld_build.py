"""The built toy world: loads with the real-format loaders, decodes to the rendered frames, and its
labels are right (checked symbolically against the ground-truth scenes). Builds the smoke world once."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from hacalib.data import (
    DataRoot,
    extract_template,
    load_msrvtt_qa,
    load_retrieval_matrix,
    load_velociti,
    load_videocon,
)
from hacalib.data.video import read_all_frames, read_video
from hacalib.toyworld import build_world, load_scenes, parse, tokenize, vocabulary
from hacalib.toyworld.benchmarks import template_matches
from hacalib.toyworld.build import velociti_items
from hacalib.toyworld.grammar import ENTAIL_INSTRUCTION
from hacalib.toyworld.hallucinate import MISALIGNMENT_TYPES
from hacalib.toyworld.render import render
from hacalib.toyworld.truth import entails, rebinds

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    t0 = time.perf_counter()
    manifest = build_world(root, size="smoke", seed=0)
    seconds = time.perf_counter() - t0
    print(f"\nsmoke world: {manifest['counts']['videos_total']} videos in {seconds:.2f} s")
    assert seconds < 60
    return root, manifest, load_scenes(root)


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "toyworld.json"}


def test_every_file_loads_with_the_real_format_loaders(world):
    root, manifest, scenes = world
    r = DataRoot(root)
    assert all(r.check().values()), r.describe()
    assert len(load_videocon(r.videocon_csv, r.videocon_videos, check_videos=True)) == manifest["files"][
        "videocon/videocon_llm_entailment.csv"]
    items = load_velociti(r.velociti_dir, video_root=r.velociti_videos, check_videos=True)
    assert Counter(i.test for i in items) == Counter(
        {k.split("/")[1][:-5]: v for k, v in manifest["files"].items() if k.startswith("velociti/")})
    m = load_retrieval_matrix(r.ssv2_matrix("toy"))
    assert m.match.shape == (9, manifest["counts"]["videos"]["ssv2"]) and (m.match.sum(axis=1) >= 3).all()
    qa = load_msrvtt_qa(r.msrvtt_qa_questions, r.msrvtt_qa_answers, r.msrvtt_qa_videos, check_videos=True)
    assert len(qa) == manifest["files"]["msrvtt_qa/test_q.json"]
    pre = [json.loads(line) for line in r.pretrain_jsonl.read_text().splitlines()]
    assert all((r.pretrain_videos / p["video"]).is_file() for p in pre)
    assert manifest["vocabulary"] == vocabulary()


def test_videos_decode_to_the_rendered_frames(world):
    root, manifest, scenes = world
    max_err = 0
    for path, (_, scene) in scenes.items():
        frames = render(scene)
        decoded = read_all_frames(root / path)
        assert decoded.shape == frames.shape == (16, 32, 32, 3)
        max_err = max(max_err, int(np.abs(decoded.astype(int) - frames).max()))
    print(f"\nmax abs pixel error over {len(scenes)} videos: {max_err}")
    assert max_err <= 2  # lossless RGB H.264: measured 0
    path, (_, scene) = next(iter(scenes.items()))
    assert np.array_equal(read_video(root / path, 8), render(scene)[manifest["sampled_frames"]])


def test_videocon_rows_true_false_balanced_and_coref_free(world):
    root, _, scenes = world
    rows = load_videocon(DataRoot(root).videocon_csv)
    for row in rows:
        scene = scenes[f"videocon/videos/{row.videopath}"][1]
        assert entails(scene, parse(row.caption))
        neg = parse(row.neg_caption)
        assert not entails(scene, neg)
        assert not rebinds(scene, neg), row  # no binding / coreference errors in training data
    train = Counter(r.misalignment for r in rows if r.split == "train")
    assert set(train) == set(MISALIGNMENT_TYPES) and max(train.values()) - min(train.values()) <= 1
    assert {r.split for r in rows} == {"train", "test"}


def test_train_and_test_videos_never_overlap(world):
    root, _, scenes = world
    prints = Counter(s.fingerprint() for _, s in scenes.values())
    assert max(prints.values()) == 1
    rows = load_videocon(DataRoot(root).videocon_csv)
    train = {r.videopath for r in rows if r.split == "train"}
    test = {r.videopath for r in rows if r.split == "test"}
    assert train and test and not train & test


def test_velociti_positives_true_negatives_false(world):
    root, _, scenes = world
    r = DataRoot(root)
    items = load_velociti(r.velociti_dir)
    assert {i.test for i in items} == {"agent_iden", "agent_bind", "action_bind", "action_mod", "action_adv",
                                       "coref", "sequence", "control"}
    for it in items:
        scene = scenes[f"velociti/videos/{it.video_id}.mp4"][1]
        assert entails(scene, parse(it.pos)), it
        assert not entails(scene, parse(it.neg)), it
        if it.test == "control":
            assert f"velociti/videos/{it.neg_video}.mp4" in scenes and it.neg_video != it.video_id
        if it.test == "coref":
            assert ", then it " in it.pos and ", then it " in it.neg and rebinds(scene, parse(it.neg))


def test_velociti_items_are_counted_without_rendering_as_the_world_holds_them(world):
    root, _, _ = world
    items = load_velociti(DataRoot(root).velociti_dir)
    assert velociti_items("smoke", seed=0) == dict(Counter(it.test for it in items))


def test_ssv2_matrix_labels_and_prompt(world):
    root, _, scenes = world
    m = load_retrieval_matrix(DataRoot(root).ssv2_matrix("toy"))
    for q, template in enumerate(m.queries):
        for v, video in enumerate(m.videos):
            assert bool(m.match[q, v]) == template_matches(scenes[f"ssv2/videos/{video}"][1], template)
    raw = (root / "ssv2" / "eval_ssv2_toy.csv").read_text()
    assert raw.startswith("videopath,caption,match\n") and "Human: <|video|>\nHuman: Does this video" in raw
    assert extract_template(m.rows[0].caption) == m.queries[0]


def test_ssv2_prompt_is_videocons(world, shared_fixtures):
    """The wrapper text equals the one in VideoCon's real SSv2 matrix."""
    import csv

    with open(shared_fixtures / "ssv2_temporal" / "eval_ssv2_temporal.csv", newline="") as f:
        real = next(csv.DictReader(f))["caption"]
    with open(world[0] / "ssv2" / "eval_ssv2_toy.csv", newline="") as f:
        toy = next(csv.DictReader(f))["caption"]
    assert real.replace(extract_template(real), "{}") == toy.replace(extract_template(toy), "{}")


def test_all_text_is_in_the_vocabulary_and_qa_answers_are_one_word(world):
    root, _, _ = world
    r = DataRoot(root)
    vocab = set(vocabulary())
    qa = load_msrvtt_qa(r.msrvtt_qa_questions, r.msrvtt_qa_answers)
    assert all(len(tokenize(q.answer)) == 1 for q in qa)
    texts = [q.question for q in qa] + [q.answer for q in qa]
    texts += [t for row in load_videocon(r.videocon_csv) for t in (row.caption, row.neg_caption)]
    texts += [t for it in load_velociti(r.velociti_dir) for t in (it.pos, it.neg)]
    pre = [json.loads(line) for line in r.pretrain_jsonl.read_text().splitlines()]
    texts += [t for p in pre for t in (p["prompt"], p["answer"])]
    assert {w for t in texts for w in tokenize(t)} <= vocab


def test_pretraining_yes_no_balanced_and_grounded(world):
    root, _, scenes = world
    pre = [json.loads(line) for line in (root / "pretrain" / "pretrain.jsonl").read_text().splitlines()]
    for task in ("entail", "exist"):
        answers = Counter(p["answer"] for p in pre if p["task"] == task)
        assert set(answers) == {"Yes", "No"} and abs(answers["Yes"] - answers["No"]) <= 1, (task, answers)
    head, tail = ENTAIL_INSTRUCTION.split("{caption}")
    for p in pre:
        if p["task"] == "entail":
            scene = scenes[f"pretrain/videos/{p['video']}"][1]
            desc = parse(p["prompt"][len(head):-len(tail)])
            assert entails(scene, desc) == (p["answer"] == "Yes")
            assert not rebinds(scene, desc)
    assert {p["task"] for p in pre} == {"caption", "qa", "entail", "exist", "template"}


def test_pretraining_questions_cover_every_type_and_are_right(world):
    """Every question type is asked (a fixed type order once left "where" out for good), "when" answers the
    event's place in the sequence, and existence answers match the scene (half the absent ones near misses)."""
    from hacalib.toyworld.questions import all_questions

    root, _, scenes = world
    pre = [json.loads(line) for line in (root / "pretrain" / "pretrain.jsonl").read_text().splitlines()]
    asked = Counter(p["prompt"].split()[0] for p in pre if p["task"] == "qa")
    assert {"how", "what", "where", "when"} <= set(asked), asked
    near = 0
    for p in pre:
        scene = scenes[f"pretrain/videos/{p['video']}"][1]
        if p["task"] == "qa":
            assert (p["prompt"], p["answer"]) in [(q, a) for q, a, _ in all_questions(scene)]
        if p["task"] == "exist":
            key = tuple(p["prompt"].removeprefix("is there a ").removesuffix("?").split())
            assert (key in scene.agent_keys()) == (p["answer"] == "Yes"), p
            near += p["answer"] == "No" and any(sum(x != y for x, y in zip(key, k)) == 1 for k in scene.agent_keys())
    assert near > 0
    for _, scene in scenes.values():
        for q, a, kind in all_questions(scene):
            if kind == "when":
                k = ("first", "second", "third").index(a)
                ev, agent = scene.events[k], scene.agents[scene.events[k].agent]
                assert f"{agent.size} {agent.color} {agent.shape}" in q and ev.action.split("_")[-1] in q


def test_deterministic_and_rerun_is_skipped(world, tmp_path):
    root, manifest, _ = world
    again = build_world(tmp_path / "a", size="smoke", seed=0)
    assert _digest(tmp_path / "a") == _digest(root)  # every file, mp4 bytes included
    assert again["counts"] == manifest["counts"]
    other = build_world(tmp_path / "b", size="smoke", seed=1)
    assert (tmp_path / "b" / "videocon" / "videocon_llm_entailment.csv").read_bytes() != (
        root / "videocon" / "videocon_llm_entailment.csv").read_bytes()
    assert other["seed"] == 1
    t0 = time.perf_counter()
    assert build_world(root, size="smoke", seed=0) == manifest
    assert time.perf_counter() - t0 < 1.0
