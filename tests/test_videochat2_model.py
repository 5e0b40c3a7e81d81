"""The native VideoChat2 family on a tiny random model, through hacalib's own scoring and training code paths."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from hacalib.config import TrainConfig
from hacalib.models import add_lora, family_of, load_model, num_video_tokens, save_model
from hacalib.models.text import prompt_ids
from hacalib.models.videochat2 import VIDEOCHAT2, build_tiny_videochat2
from hacalib.models.videochat2.processing import check_prompt_tokenization, segment_ids
from hacalib.scoring.generation import generate_texts
from hacalib.scoring.pyes import p_yes
from hacalib.scoring.requests import ScoreRequest
from hacalib.training.datasets import training_data
from hacalib.training.examples import Example, answer_token_ids, encode
from hacalib.training.feature_cache import VisionFeatureCache, vision_is_frozen
from hacalib.training.loop import train
from hacalib.training.loss import batch_loss

WORDS = "a the red blue green circle square triangle moves left right up down grows shrinks quickly slowly then it".split()
ATOL = 1e-5  # float32 on CPU: the methods differ by summation order only
CAPTIONS = ["a red circle moves left", "the blue square grows quickly then it shrinks", "a triangle",
            "a green square moves up slowly", "it grows", "the red triangle moves down then it moves right quickly"]


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_videochat2(WORDS, seed=0)


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8) for _ in range(3)]


def _requests(frames):
    return [ScoreRequest(frames[i % 3], c, video_id=f"v{i % 3}") for i, c in enumerate(CAPTIONS)]


def _original_way_pyes(model, proc, video, caption):
    """P(yes) the way the original demo builds its input: segments embedded separately around the video tokens."""
    tok, tpl = proc.tokenizer, VIDEOCHAT2.template
    before, _, after = tpl.entail_prompt(caption).partition(tpl.video_token)
    emb = model.get_input_embeddings()
    with torch.no_grad():
        feats = model.get_video_features(proc.preprocess([video]))
        seq = torch.cat([emb(torch.tensor([tok(before).input_ids])), feats,
                         emb(torch.tensor([tok(after, add_special_tokens=False).input_ids]))], dim=1)
        logits = model.language_model(inputs_embeds=seq).logits[0, -1].float()
    yes, no = answer_token_ids(tok, tpl)
    return float(torch.sigmoid(logits[yes] - logits[no]))


def test_family_contract(tiny):
    model, proc = tiny
    assert family_of(model) is VIDEOCHAT2 and family_of(proc) is VIDEOCHAT2 and family_of(model.config) is VIDEOCHAT2
    assert num_video_tokens(proc, 8) == num_video_tokens(proc, 16) == 6  # the queries, whatever the frame count
    feats = VIDEOCHAT2.video_features(model, torch.randn(2, 8, 3, 32, 32))
    assert feats.shape == (2, 6, 64) and not torch.allclose(feats[0], feats[1])
    assert VIDEOCHAT2.video_features(model, torch.randn(1, 4, 3, 32, 32)).shape == (1, 6, 64)
    vid = model.config.video_token_id
    ids = torch.tensor([[1] + [vid] * 6 + [5, 2]] * 2)
    embeds = VIDEOCHAT2.embed_video(model, ids, feats)
    assert torch.equal(embeds[:, 1:7], feats)
    with pytest.raises(ValueError, match="video placeholder tokens"):
        VIDEOCHAT2.embed_video(model, ids[:, :-4], feats)
    with pytest.raises(ValueError, match="no pixel_values_videos"):
        model(input_ids=ids)
    assert VIDEOCHAT2.language_model(model) is model.language_model.model
    assert VIDEOCHAT2.lm_head(model) is model.language_model.lm_head
    assert VIDEOCHAT2.vision_modules(model) == [model.vision_model, model.connector]
    assert VIDEOCHAT2.attn_implementation(model) in ("sdpa", "eager")
    check_prompt_tokenization(proc.tokenizer, VIDEOCHAT2.template, 6)


def test_forward_with_pixels_equals_forward_with_embeddings(tiny, frames):
    model, proc = tiny
    ids = torch.tensor(prompt_ids(proc.tokenizer, [VIDEOCHAT2.template.entail_prompt("a red circle")], 6,
                                  VIDEOCHAT2.template))
    pv = proc.preprocess(frames[:1])
    with torch.no_grad():
        a = model(input_ids=ids, pixel_values_videos=pv).logits
        b = model(inputs_embeds=VIDEOCHAT2.embed_video(model, ids, VIDEOCHAT2.video_features(model, pv))).logits
        last = model(input_ids=ids, pixel_values_videos=pv, logits_to_keep=1).logits
    assert a.shape == (1, ids.shape[1], len(proc.tokenizer)) and torch.equal(a, b)
    torch.testing.assert_close(last[:, -1], a[:, -1], atol=1e-6, rtol=0)


def test_pyes_packed_and_cascade_equal_one_forward_per_pair(tiny, frames):
    model, proc = tiny
    reqs = _requests(frames)
    one = p_yes(model, proc, reqs, method="naive", batch_size=1)
    ref = np.array([_original_way_pyes(model, proc, r.video, r.caption) for r in reqs])
    np.testing.assert_allclose(one, ref, atol=ATOL, rtol=0)  # hacalib's one-call prompt == the original's segments
    for method, kw in [("naive", {"batch_size": 4}), ("packed", {}), ("packed", {"segments_per_pack": 2}),
                       ("cascade", {})]:
        got = p_yes(model, proc, reqs, method=method, **kw)
        np.testing.assert_allclose(got, one, atol=ATOL, rtol=0, err_msg=f"{method} {kw}")
    assert np.ptp(one) > 1e-4  # a random model still gives input-dependent scores


def test_save_reload_gives_identical_pyes(tiny, frames, tmp_path):
    model, proc = tiny
    reqs = _requests(frames)
    before = p_yes(model, proc, reqs)
    save_model(model, proc, tmp_path / "vc2")
    again, proc2 = load_model(tmp_path / "vc2", dtype="float32")
    assert family_of(again) is VIDEOCHAT2 and type(proc2) is type(proc)
    np.testing.assert_array_equal(p_yes(again, proc2, reqs), before)
    assert proc2.tokenizer(CAPTIONS[1]).input_ids == proc.tokenizer(CAPTIONS[1]).input_ids
    from hacalib.models.videochat2 import VideoChat2ForConditionalGeneration

    eager = VideoChat2ForConditionalGeneration.from_pretrained(tmp_path / "vc2", attn_implementation="eager").eval()
    assert VIDEOCHAT2.attn_implementation(eager) == "eager"  # the packed mask then takes its additive form
    np.testing.assert_allclose(p_yes(eager, proc2, reqs), before, atol=ATOL, rtol=0)
    bf16 = p_yes(again.to(torch.bfloat16), proc2, reqs)  # bf16 runs (P(yes) is read in float32)
    assert bf16.dtype == np.float32 and np.abs(bf16 - before).max() < 0.05


def _encoded(proc, frames):
    tpl, tok = VIDEOCHAT2.template, proc.tokenizer
    answers = answer_token_ids(tok, tpl)
    examples = [Example(f"v{i % 3}", tpl.entail_prompt(c), "Yes" if i % 2 else "No, " + CAPTIONS[0], "pos" if i % 2 else "neg")
                for i, c in enumerate(CAPTIONS)]
    encoded = [encode(e, tok, 6, answer_ids=answers, template=tpl) for e in examples]
    videos = {f"v{i}": proc.preprocess([f])[0] for i, f in enumerate(frames)}
    return encoded, [e.video for e in examples], (lambda path: videos[path.name])


def test_lora_step_through_the_training_loop_with_the_feature_cache(frames, tmp_path):
    model, proc = build_tiny_videochat2(WORDS, seed=0, dropout=0.1)  # the original's Q-Former dropout
    model.requires_grad_(False)
    model = add_lora(model, r=4, alpha=8, dropout=0.0, seed=0)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".language_model." in n and "lora_" in n for n in trainable)
    assert vision_is_frozen(model.train())  # frozen vision parts stay in eval mode: no Q-Former dropout
    assert not model.base_model.model.connector.training
    encoded, videos, video_fn = _encoded(proc, frames)
    attn = VIDEOCHAT2.attn_implementation(model)
    packed, packed_collate = training_data(encoded, videos, video_fn, packed=True, pad_id=proc.tokenizer.pad_token_id,
                                           attn_implementation=attn, video_keys=True)
    padded, pad_collate = training_data(encoded, videos, video_fn, packed=False, pad_id=proc.tokenizer.pad_token_id)
    with torch.no_grad():  # the same loss packed (one sequence per video) and padded (one row per example)
        model.eval()
        a = batch_loss(model, packed_collate([packed[i] for i in range(len(packed))]))
        b = batch_loss(model, pad_collate([padded[i] for i in range(len(padded))]))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    cfg = TrainConfig(max_steps=2, batch_size=3, grad_accum=1, lr=1e-2, warmup_steps=0, checkpoint_every=2,
                      log_every=1, output_dir=str(tmp_path / "run"), seed=0)
    cache = VisionFeatureCache(identity="tiny-videochat2")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the loop warns when it cannot use the cache
        result = train(model, packed, cfg, collate_fn=packed_collate, progress=False, vision_cache=cache)
    assert len(result.losses) == 2 and all(np.isfinite(result.losses)) and len(cache) == 3
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= trainable


def test_pretraining_trains_every_parameter_it_marks(tiny, frames):
    model, proc = build_tiny_videochat2(WORDS, seed=1)
    VIDEOCHAT2.set_pretraining_trainable(model)
    encoded, videos, video_fn = _encoded(proc, frames)
    padded, collate = training_data(encoded, videos, video_fn, packed=False, pad_id=proc.tokenizer.pad_token_id)
    model.train()
    batch_loss(model, collate([padded[i] for i in range(len(padded))])).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing


def test_generate_through_the_shared_generation_code(tiny, frames):
    model, proc = tiny
    reqs = [ScoreRequest(frames[0], "q", video_id="v0"), ScoreRequest(frames[1], "q", video_id="v1")]
    prompts_ = [VIDEOCHAT2.template.qa_prompt("what moves"), VIDEOCHAT2.template.caption_prompt()]
    texts = generate_texts(model, proc, reqs, prompts_, max_new_tokens=3, batch_size=2)
    ids = torch.tensor(prompt_ids(proc.tokenizer, prompts_[:1], 6, VIDEOCHAT2.template))
    with torch.no_grad():
        first = model(input_ids=ids, pixel_values_videos=proc.preprocess(frames[:1])).logits[0, -1].argmax()
    assert len(texts) == 2 and texts[0].split()[0] == proc.tokenizer.decode([int(first)]).strip()


def test_lora_targets_only_the_language_model(tiny):
    import re

    rx = re.compile(VIDEOCHAT2.lora_target_regex(VIDEOCHAT2.lora_targets + ("lm_head",)))
    hits = [n for n, _ in tiny[0].named_modules() if rx.fullmatch(n)]
    assert "language_model.lm_head" in hits and all(n.startswith("language_model.") for n in hits)
    assert len(hits) == 2 * 7 + 1


def test_the_prompt_matches_the_original_segments(tiny):
    _, proc = tiny
    tpl = VIDEOCHAT2.template
    for text in (tpl.entail_prompt("a red circle"), tpl.qa_prompt("what moves"), tpl.caption_prompt()):
        assert prompt_ids(proc.tokenizer, [text], 6, tpl)[0] == segment_ids(proc.tokenizer, text, 6)


def test_model_generate_takes_the_video_once(tiny, frames):
    """`model.generate(input_ids, pixel_values_videos)` (the video enters at the prefill only) equals the family's."""
    model, proc = tiny
    ids = torch.tensor(prompt_ids(proc.tokenizer, [VIDEOCHAT2.template.caption_prompt()], 6, VIDEOCHAT2.template))
    pv = proc.preprocess(frames[:1])
    with torch.no_grad():
        a = model.generate(input_ids=ids, pixel_values_videos=pv, max_new_tokens=4, do_sample=False)
        b = VIDEOCHAT2.generate(model, ids, torch.ones_like(ids), VIDEOCHAT2.video_features(model, pv),
                                max_new_tokens=4, do_sample=False)
    assert a.shape == (1, ids.shape[1] + 4) and torch.equal(a, b)


def test_gradient_checkpointing_gives_the_same_gradients(frames):
    model, proc = build_tiny_videochat2(WORDS, seed=2)
    VIDEOCHAT2.set_pretraining_trainable(model)
    encoded, videos, video_fn = _encoded(proc, frames)
    padded, collate = training_data(encoded, videos, video_fn, packed=False, pad_id=proc.tokenizer.pad_token_id)
    batch = collate([padded[i] for i in range(len(padded))])
    grads = []
    for checkpointing in (False, True):
        model.zero_grad()
        if checkpointing:
            getattr(model, "activation_checkpointing_enable", model.gradient_checkpointing_enable)()
        model.train()
        batch_loss(model, batch).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert model.vision_model.gradient_checkpointing
    for name, g in grads[0].items():
        torch.testing.assert_close(grads[1][name], g, atol=1e-6, rtol=1e-5, msg=name)


def test_the_tiny_builder_is_seeded():
    state = torch.get_rng_state()
    a, b, c = (build_tiny_videochat2(WORDS, seed=s)[0].state_dict() for s in (3, 3, 4))
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(a[k], b[k]) for k in a) and not torch.equal(a["connector.query_tokens"], c["connector.query_tokens"])
    assert float(a["vision_model.layers.0.attn.q_bias"].abs().sum()) > 0  # random, not zero, q/v biases


def test_the_default_config_has_the_paper_model_shapes():
    """VideoChat2-Mistral-7B's shapes, built on the meta device (no memory): what the converter fills."""
    from accelerate import init_empty_weights

    from hacalib.models.videochat2 import VideoChat2Config, VideoChat2ForConditionalGeneration

    config = VideoChat2Config()
    with init_empty_weights():
        model = VideoChat2ForConditionalGeneration(config)
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    assert len(model.vision_model.layers) == 23 and config.vision_config.post_layernorm_eps == 1e-12
    assert shapes["vision_model.patch_embedding.weight"] == (1024, 3, 1, 16, 16)
    assert shapes["vision_model.layers.22.attn.qkv.weight"] == (3072, 1024)
    assert shapes["vision_model.layers.22.attn.q_bias"] == (1024,) and "vision_model.layers.0.attn.k_bias" not in shapes
    assert shapes["vision_model.layers.0.mlp.fc1.weight"] == (4096, 1024)
    assert shapes["connector.query_tokens"] == (1, 96, 768)
    assert shapes["connector.qformer.embeddings.word_embeddings.weight"] == (30523, 768)
    assert shapes["connector.qformer.encoder.layer.10.crossattention.attention.key.weight"] == (768, 1024)
    assert "connector.qformer.encoder.layer.11.crossattention.attention.key.weight" not in shapes
    assert shapes["connector.projection.weight"] == (4096, 768)
    assert shapes["language_model.model.embed_tokens.weight"] == (32000, 4096)
    vision = sum(p.numel() for n, p in model.named_parameters() if n.startswith("vision_model."))
    assert 290e6 < vision < 300e6  # UMT-L without its 24th block


def test_preprocessing_resizes_the_short_side_crops_the_centre_and_never_flips():
    from hacalib.models.videochat2.processing import CLIP_MEAN, CLIP_STD, VideoChat2Processor, original_frame_indices

    proc = VideoChat2Processor(build_tiny_videochat2(WORDS, seed=0)[1].tokenizer, image_size=64)
    frames = np.zeros((2, 90, 160, 3), dtype=np.uint8)
    frames[:, :, 50:70] = 255  # a bright band left of the centre
    x = proc.preprocess([frames])
    assert x.shape == (1, 2, 3, 64, 64) and x.dtype == torch.float32
    # 90 x 160 -> 64 x 113 (short side 64), centre crop 64: columns 24..88 of the resized frame
    bright = (x[0, 0, 0] * CLIP_STD[0] + CLIP_MEAN[0]).mean(dim=0) > 0.5
    cols = bright.nonzero().squeeze(1)
    assert 8 < int(cols.min()) and int(cols.max()) < 30  # at 11.6..25.8 after resize and crop: not flipped
    with pytest.raises(ValueError, match="uint8"):
        proc.preprocess([frames.astype(np.float32)])
    # the demo's frame choice, for reference: s = (N - 1) / T, frame i = int(s / 2) + round(s * i)
    assert original_frame_indices(300, 8).tolist() == [18, 55, 93, 130, 168, 205, 242, 280]
