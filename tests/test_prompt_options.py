"""Entailment prompt options at evaluation (issue 18 item 6): they reach the scorer, keep the answer position, and
key the cached results so results made with different prompts never mix."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from hacalib import prompts
from hacalib.experiment import BENCHMARKS, ENTAIL_BENCHMARKS, Experiment


def _paper(tmp_path: Path, prompt: str = "haca") -> Experiment:
    return Experiment(preset="videollava-7b", data_root=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"),
                      smoke=True, prompt=prompt)


def test_cache_key_differs_by_prompt_only_where_the_question_is_asked(tmp_path):
    where = tmp_path / "results"
    files = {p: {b: _paper(tmp_path, p).eval_file(b, where) for b in BENCHMARKS} for p in prompts.ENTAIL_PROMPTS}
    for b in BENCHMARKS:
        names = {files[p][b].name for p in prompts.ENTAIL_PROMPTS}
        assert len(names) == (len(prompts.ENTAIL_PROMPTS) if b in ENTAIL_BENCHMARKS else 1), b


def test_default_prompt_keeps_the_key_results_were_cached_under(tmp_path):
    # the key before prompt options existed: every cached result of the default prompt stays valid
    exp = _paper(tmp_path)
    old = hashlib.sha256(json.dumps(["velociti", exp.eval_limit("velociti"), str(exp.root_path), prompts.PROMPT_VERSION,
                                     asdict(exp.config.model), str(exp.base_path(None))], default=str).encode())
    assert exp.eval_file("velociti", tmp_path).name == f"velociti-{old.hexdigest()[:10]}.csv"


def test_a_launched_process_scores_with_the_same_prompt_into_the_same_file(tmp_path):
    # `--num-processes N` rebuilds the experiment in each process from `launch_fields`: the question must travel
    exp = _paper(tmp_path, "velociti_v1")
    again = Experiment(**{**exp.launch_fields(), "seeds": tuple(exp.seeds), "base_seeds": tuple(exp.base_seeds)})
    assert again.prompt == "velociti_v1"
    assert again.eval_file("velociti", tmp_path) == exp.eval_file("velociti", tmp_path)


def test_prompt_choice_is_checked(tmp_path):
    with pytest.raises(ValueError, match="unknown entailment prompt"):
        _paper(tmp_path, "bogus")
    with pytest.raises(ValueError, match="toy preset's vocabulary"):
        Experiment(preset="toy", cache_dir=str(tmp_path), smoke=True, prompt="velociti_v1")
    assert Experiment(preset="toy", cache_dir=str(tmp_path), smoke=True).prompt == "haca"


@pytest.fixture(scope="module")
def tiny_real_vocab(shared_fixtures):
    from hacalib.models.tiny7b import build_tiny_videollava_7b_hf

    model, processor = build_tiny_videollava_7b_hf(shared_fixtures / "tokenizers" / "llama2" / "tokenizer.model")
    return model.eval(), processor


@pytest.mark.parametrize("name", ["velociti_v1", "videocon"])
def test_each_option_scores_packed_as_one_forward_per_pair(tiny_real_vocab, name):
    """The option reaches P(yes): packed (prefix shared across a video's captions) equals one forward per pair, and
    the numbers are not the default prompt's."""
    from hacalib.scoring.pyes import p_yes
    from hacalib.scoring.requests import ScoreRequest

    model, processor = tiny_real_vocab
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (8, 224, 224, 3), dtype=np.uint8) for _ in range(2)]
    captions = ["A man rides a horse.", "A woman rides a bike.", "Two dogs run on a beach."]
    reqs = [ScoreRequest(frames[i % 2], c, video_id=f"v{i % 2}") for i, c in enumerate(captions * 2)]
    packed = p_yes(model, processor, reqs, prompt=name)
    naive = p_yes(model, processor, reqs, prompt=name, method="naive", batch_size=1)
    np.testing.assert_allclose(packed, naive, atol=1e-5)
    assert np.abs(packed - p_yes(model, processor, reqs)).max() > 1e-6


def test_correction_prompts_follow_the_option(tiny_real_vocab):
    from hacalib.scoring.generation import correction_prompts
    from hacalib.scoring.requests import ScoreRequest

    model, _ = tiny_real_vocab
    req = [ScoreRequest("v.mp4", "A man sits.")]
    assert correction_prompts(model, req) == [prompts.entail_prompt("A man sits.")]
    assert correction_prompts(model, req, "velociti_v1")[0].endswith("Caption: A man sits.\nASSISTANT:")
