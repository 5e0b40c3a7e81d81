"""P(yes) and caption log-likelihood: naive vs packed, batch sizes, padding side, order, resumable files."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from hacalib import prompts
from hacalib.data.video import write_mp4
from hacalib.errors import DataError
from hacalib.models import build_toy_model, num_video_tokens, preprocess_videos, prompt_ids
from hacalib.scoring.loglik import caption_loglik
from hacalib.scoring.pyes import p_yes, summarize
from hacalib.scoring.requests import ScoreRequest
from hacalib.scoring.results_file import score_to_file
from hacalib.training.examples import Example, answer_token_ids, encode

WORDS = "a the red blue green circle square triangle moves left right up down grows shrinks quickly slowly then it".split()
ATOL = 1e-5  # float32 on CPU; the methods differ by summation order only (measured < 1e-6)
CAPTIONS = [
    "a red circle moves left", "the blue square grows quickly then it shrinks", "a triangle",
    "a green square moves up slowly", "it grows", "the red triangle moves down then it moves right quickly",
]


@pytest.fixture(scope="module")
def toy():
    return build_toy_model(WORDS, seed=0)


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8) for _ in range(3)]


def _requests(frames):
    # videos interleaved, so grouping by video must restore the order
    return [ScoreRequest(frames[i % 3], c, video_id=f"v{i % 3}") for i, c in enumerate(CAPTIONS)]


def _one_pair_reference(model, proc, frames, req):
    """P(yes) of one pair through the model's own forward and the processor, independent of hacalib.scoring."""
    video = frames[int(req.video_id[1:])]
    inputs = proc(text=[prompts.entail_prompt(req.caption)], videos=[video], return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits[0, -1].float()
    probs = torch.softmax(logits, -1)
    yes, no = answer_token_ids(proc.tokenizer)
    return float(probs[yes] / (probs[yes] + probs[no]))


def test_prompt_ids_match_training_encoding(toy):
    _, proc = toy
    nvt = num_video_tokens(proc, 8)
    enc = encode(Example("v", prompts.entail_prompt("a red circle"), "Yes", "pos"), proc.tokenizer, nvt)
    ids, other = prompt_ids(proc.tokenizer, [prompts.entail_prompt("a red circle"), prompts.entail_prompt("it")], nvt)
    # the answer position is the last prompt token: the one whose label-shifted target is the first answer token
    assert ids == enc["input_ids"][: len(ids)]
    assert enc["labels"][len(ids)] == answer_token_ids(proc.tokenizer)[0]
    assert other[: len(ids) - 7] == ids[: len(ids) - 7] and len(other) == len(ids) - 2


def test_naive_one_at_a_time_matches_processor_reference(toy, frames):
    model, proc = toy
    reqs = _requests(frames)
    got = p_yes(model, proc, reqs, method="naive", batch_size=1)
    ref = np.array([_one_pair_reference(model, proc, frames, r) for r in reqs])
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=ATOL, rtol=0)
    assert np.ptp(got) > 1e-4  # a random model still gives input-dependent scores


def test_batched_padding_and_packed_equal_one_at_a_time(toy, frames):
    model, proc = toy
    reqs = _requests(frames)
    one = p_yes(model, proc, reqs, method="naive", batch_size=1)
    variants = {
        "naive b4 right": p_yes(model, proc, reqs, method="naive", batch_size=4, padding_side="right"),
        "naive b4 left": p_yes(model, proc, reqs, method="naive", batch_size=4, padding_side="left"),
        "packed": p_yes(model, proc, reqs, method="packed", batch_size=8),
        "packed one video per forward": p_yes(model, proc, reqs, method="packed", batch_size=1),
        "packed chunks of 1": p_yes(model, proc, reqs, method="packed", batch_size=2, segments_per_pack=1),
    }
    for name, got in variants.items():
        np.testing.assert_allclose(got, one, atol=ATOL, rtol=0, err_msg=name)


def test_order_follows_requests(toy, frames):
    model, proc = toy
    reqs = _requests(frames)
    base = p_yes(model, proc, reqs)
    perm = np.random.default_rng(1).permutation(len(reqs))
    shuffled = p_yes(model, proc, [reqs[i] for i in perm])
    np.testing.assert_allclose(shuffled, base[perm], atol=ATOL, rtol=0)


def test_video_cache_is_filled_and_reused(toy, frames):
    model, proc = toy
    cache: dict = {}
    reqs = _requests(frames)
    a = p_yes(model, proc, reqs, video_cache=cache)
    assert set(cache) == {"v0", "v1", "v2"}
    cache["v0"] = preprocess_videos(proc, [frames[1]])[0]  # a cached tensor wins over the request's frames
    b = p_yes(model, proc, reqs, video_cache=cache)
    assert b[0] != a[0] and b[1] == a[1]


def test_caption_loglik_packed_equals_naive_and_eos_choice(toy, frames):
    model, proc = toy
    reqs = _requests(frames)
    naive = caption_loglik(model, proc, reqs, method="naive", batch_size=3)
    packed = caption_loglik(model, proc, reqs, method="packed")
    np.testing.assert_allclose(packed, naive, atol=1e-4, rtol=0)  # sums of ~10 log-probs
    assert (naive < 0).all()
    mean = caption_loglik(model, proc, reqs, reduction="mean")
    n_tokens = np.array([len(c.split()) + 1 for c in CAPTIONS])  # word tokens + EOS
    np.testing.assert_allclose(mean * n_tokens, packed, atol=1e-4, rtol=0)
    no_eos = caption_loglik(model, proc, reqs, include_eos=False)
    assert (no_eos > packed).all()  # dropping a log-prob < 0 raises the sum


def test_bad_arguments(toy, frames):
    model, proc = toy
    with pytest.raises(ValueError, match="method"):
        p_yes(model, proc, _requests(frames), method="fast")
    with pytest.raises(ValueError, match="batch_size"):
        p_yes(model, proc, _requests(frames), batch_size=0)


def test_summarize_flags_collapse():
    s = summarize([0.5, 0.5, 0.5])
    assert s["collapsed"] and s["std"] == 0.0
    assert not summarize([0.1, 0.9])["collapsed"]


@pytest.fixture(scope="module")
def video_files(tmp_path_factory, frames):
    root = tmp_path_factory.mktemp("videos")
    paths = []
    for i, f in enumerate(frames):
        paths.append(root / f"v{i}.mp4")
        write_mp4(paths[-1], f, fps=8)
    return paths


def test_score_to_file_resumes_after_a_kill(toy, video_files, tmp_path, monkeypatch):
    model, proc = toy
    reqs = [ScoreRequest(str(video_files[i % 3]), c) for i, c in enumerate(CAPTIONS)]
    out = tmp_path / "scores.csv"
    full = score_to_file(model, proc, reqs, out, batch_size=1)
    np.testing.assert_allclose(full, p_yes(model, proc, reqs), atol=ATOL, rtol=0)
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["request", "video_id", "caption", "score"] and len(rows) == 1 + len(reqs)

    # simulate a kill: keep the first video's rows and half a line of the second, then resume
    lines = out.read_text().splitlines(keepends=True)
    first_video = [ln for ln in lines[1:] if str(video_files[0]) in ln]
    second = [ln for ln in lines[1:] if str(video_files[1]) in ln]
    out.write_text(lines[0] + "".join(first_video) + second[0] + second[1][:7])

    import hacalib.scoring.results_file as score_mod

    seen = []
    real = score_mod.iter_pyes

    def spy(*args, skip=None, **kw):
        seen.append(set(skip))
        yield from real(*args, skip=skip, **kw)

    monkeypatch.setattr(score_mod, "iter_pyes", spy)
    resumed = score_to_file(model, proc, reqs, out, batch_size=1)
    assert seen == [{str(video_files[0])}]  # only the complete video is skipped
    np.testing.assert_allclose(resumed, full, atol=0, rtol=0)  # kept rows round-trip float32 exactly
    assert len(list(csv.reader(out.open()))) == 1 + len(reqs)


def test_score_to_file_refuses_other_inputs(toy, video_files, tmp_path):
    model, proc = toy
    reqs = [ScoreRequest(str(video_files[0]), c) for c in CAPTIONS[:2]]
    out = tmp_path / "scores.csv"
    score_to_file(model, proc, reqs, out)
    other = [ScoreRequest(str(video_files[0]), c) for c in ["a triangle", "it grows"]]
    with pytest.raises(DataError, match="row 1.*does not match"):
        score_to_file(model, proc, other, out)
    with pytest.raises(ValueError, match="stable key"):
        score_to_file(model, proc, [ScoreRequest(np.zeros((8, 32, 32, 3), np.uint8), "a")], tmp_path / "x.csv")


def lora_toy():
    """A toy model wrapped in LoRA adapters whose B matrices are random (so the adapters change the output)."""
    from hacalib.models import add_lora

    model, proc = build_toy_model(WORDS, seed=1)
    torch.manual_seed(0)
    peft_model = add_lora(model, r=4, dropout=0.0).eval()
    with torch.no_grad():  # LoRA B starts at zero; make the adapters change the output
        for name, w in peft_model.named_parameters():
            if "lora_B" in name:
                w.normal_(0, 0.5)
    return model, proc, peft_model


def test_a_finetuned_model_loads_merged_with_the_same_scores(frames, tmp_path):
    """`load_finetuned` folds the adapter into the weights by default: the base model's class, P(yes) as the peft
    model gives it (float32 rounding), and not the base model's."""
    from peft import PeftModel

    from hacalib.models import save_adapter, save_model
    from hacalib.training.finetune import load_finetuned

    model, proc, peft_model = lora_toy()
    save_adapter(peft_model, tmp_path / "adapter")
    save_model(*build_toy_model(WORDS, seed=1), tmp_path / "base")  # lora_toy's base, before peft wrapped it
    reqs = _requests(frames)
    with peft_model.disable_adapter():
        base = p_yes(peft_model, proc, reqs)
    merged, merged_proc = load_finetuned(tmp_path / "base", tmp_path / "adapter", dtype="float32")
    kept, _ = load_finetuned(tmp_path / "base", tmp_path / "adapter", dtype="float32", merge=False)
    assert isinstance(kept, PeftModel) and not isinstance(merged, PeftModel) and not merged.training
    assert not any("lora_" in name for name, _ in merged.named_parameters())
    got, reference = p_yes(merged, merged_proc, reqs), p_yes(kept, merged_proc, reqs)
    np.testing.assert_allclose(got, reference, atol=ATOL, rtol=0)
    np.testing.assert_allclose(reference, p_yes(peft_model, proc, reqs), atol=ATOL, rtol=0)
    assert np.abs(got - base).max() > 1e-3  # the merged weights carry the adapter


def test_lora_wrapped_model_packed_equals_naive(frames):
    model, proc, peft_model = lora_toy()
    reqs = _requests(frames)
    naive = p_yes(peft_model, proc, reqs, method="naive", batch_size=2)
    packed = p_yes(peft_model, proc, reqs)
    np.testing.assert_allclose(packed, naive, atol=ATOL, rtol=0)
    with peft_model.disable_adapter():
        base = p_yes(peft_model, proc, reqs)
    assert np.abs(base - packed).max() > 1e-3  # the adapters are used by the packed path
