"""The toy Video-LLaVA: size, processor expansion, save/reload, LoRA placement and freezing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hacalib import prompts
from hacalib.models import (
    add_lora,
    build_toy_model,
    language_model_target_regex,
    load_adapter,
    load_model,
    num_video_tokens,
    preprocess_videos,
    resolve_dtype,
    save_adapter,
    save_model,
)
from hacalib.training.examples import Example, answer_token_ids, encode

WORDS = "a the red blue green circle square triangle moves left right up down grows shrinks quickly slowly then it".split()


@pytest.fixture(scope="module")
def toy():
    return build_toy_model(WORDS, seed=0)


def _videos(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8) for _ in range(n)]


def _inputs(processor, captions: list[str], seed: int = 0):
    texts = [prompts.entail_prompt(c) for c in captions]
    return processor(text=texts, videos=_videos(len(texts), seed), padding=True, return_tensors="pt")


def test_toy_size_and_architecture(toy):
    model, processor = toy
    n = sum(p.numel() for p in model.parameters())
    assert 0.6e6 < n < 1.0e6, n
    assert type(model).__name__ == "VideoLlavaForConditionalGeneration"
    assert model.config.text_config.vocab_size == len(processor.tokenizer)
    assert model.config.video_token_id == processor.tokenizer.convert_tokens_to_ids("<video>")


def test_processor_expands_video_to_136_tokens(toy):
    model, processor = toy
    assert num_video_tokens(processor, 8) == 136
    out = _inputs(processor, ["a red circle moves left"])
    assert out["pixel_values_videos"].shape == (1, 8, 3, 32, 32)
    assert int((out["input_ids"] == model.config.video_token_id).sum()) == 136
    # encode() expands <video> exactly as the processor does
    ex = Example("v", prompts.entail_prompt("a red circle moves left"), "Yes", "pos")
    enc = encode(ex, processor.tokenizer, num_video_tokens(processor, 8))
    n_prompt = sum(1 for label in enc["labels"] if label == -100)
    assert enc["input_ids"][:n_prompt] == out["input_ids"][0].tolist()
    assert torch.allclose(preprocess_videos(processor, _videos(1)), out["pixel_values_videos"])
    with torch.no_grad():
        logits = model(**out).logits
    assert logits.shape == (1, out["input_ids"].shape[1], len(processor.tokenizer))


def test_yes_no_are_single_tokens(toy):
    tok = toy[1].tokenizer
    yes, no = answer_token_ids(tok)
    assert tok.convert_ids_to_tokens([yes, no]) == ["Yes", "No"]
    assert tok(prompts.YES, add_special_tokens=False).input_ids == [yes]
    assert tok(prompts.NO, add_special_tokens=False).input_ids == [no]
    assert tok.unk_token_id not in tok(prompts.templates()["mask"].replace("{masked_caption}", "a red circle")).input_ids


def test_seed_decides_weights():
    a, _ = build_toy_model(WORDS, seed=1)
    b, _ = build_toy_model(WORDS, seed=1)
    c, _ = build_toy_model(WORDS, seed=2)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_sincos_position_init_tells_patches_apart_and_survives_save(tmp_path):
    """position_init="sincos": the CLS row is zero, every patch row differs, the row/column halves repeat along
    columns/rows, the rest of the model is the seed's own init, and save/load keeps the table."""
    from hacalib.models.toy import sincos_2d

    plain, _ = build_toy_model(WORDS, seed=0)
    model, processor = build_toy_model(WORDS, seed=0, position_init="sincos")
    table = model.model.video_tower.embeddings.position_embedding.weight.detach()
    assert torch.equal(table, sincos_2d(64, 4)) and table.shape == (17, 64)
    assert torch.equal(table[0], torch.zeros(64))
    assert len({tuple(r.tolist()) for r in table[1:]}) == 16
    rows, cols = table[1:, :32].reshape(4, 4, 32), table[1:, 32:].reshape(4, 4, 32)
    assert torch.equal(rows[:, 0], rows[:, 3]) and torch.equal(cols[0], cols[3])  # row part ignores the column
    assert torch.equal(model.model.image_tower.embeddings.position_embedding.weight.detach(), table)
    other = {k: v for k, v in model.state_dict().items() if "position_embedding" not in k}
    assert all(torch.equal(v, plain.state_dict()[k]) for k, v in other.items())
    save_model(model, processor, tmp_path / "m")
    again, _ = load_model(tmp_path / "m", dtype="float32")
    assert torch.equal(again.model.video_tower.embeddings.position_embedding.weight.detach(), table)
    with pytest.raises(ValueError, match="position_init"):
        build_toy_model(WORDS, seed=0, position_init="learned")


def test_save_reload_gives_identical_logits(toy, tmp_path):
    model, processor = toy
    save_model(model, processor, tmp_path / "toy")
    model2, processor2 = load_model(tmp_path / "toy")
    assert type(processor2).__name__ == "VideoLlavaProcessor"
    inputs = _inputs(processor, ["a red circle moves left", "the blue square grows quickly then it shrinks"])
    inputs2 = _inputs(processor2, ["a red circle moves left", "the blue square grows quickly then it shrinks"])
    assert torch.equal(inputs["input_ids"], inputs2["input_ids"])
    assert torch.equal(inputs["pixel_values_videos"], inputs2["pixel_values_videos"])
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, model2(**inputs2).logits)
    # saving again over an existing folder replaces it atomically
    save_model(model2, processor2, tmp_path / "toy")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_lora_targets_language_model_only(toy):
    pattern = language_model_target_regex(["q_proj", "v_proj"])
    model = build_toy_model(WORDS, seed=0)[0]
    names = [n for n, _ in model.named_modules()]
    import re

    hits = [n for n in names if re.fullmatch(pattern, n)]
    assert hits and all(".language_model." in n for n in hits)
    assert any("video_tower" in n and n.endswith("q_proj") for n in names)  # CLIP has q_proj too


def test_lora_trains_only_adapter(tmp_path):
    torch.manual_seed(0)
    model, processor = build_toy_model(WORDS, seed=0)
    base = {k: v.clone() for k, v in model.state_dict().items()}
    peft_model = add_lora(model, r=4, alpha=8, dropout=0.0)
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n and ".language_model." in n for n in trainable)
    peft_model.train()
    opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-2)
    ex = Example("v", prompts.entail_prompt("a red circle moves left"), "No, a blue square moves right", "neg")
    enc = encode(ex, processor.tokenizer, num_video_tokens(processor, 8))
    batch = {k: torch.tensor([v]) for k, v in enc.items()}
    batch["pixel_values_videos"] = preprocess_videos(processor, _videos(1))
    for _ in range(2):
        loss = peft_model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    merged_names = {k.replace("base_model.model.", "").replace(".base_layer", ""): v
                    for k, v in peft_model.state_dict().items() if "lora_" not in k}
    assert set(merged_names) == set(base)
    assert all(torch.equal(merged_names[k], base[k]) for k in base)
    lora_b = [p for n, p in peft_model.named_parameters() if "lora_B" in n]
    assert any(p.abs().sum() > 0 for p in lora_b)  # B starts at zero: the step moved it

    # adapter save/reload gives the same P(yes)
    peft_model.eval()
    save_adapter(peft_model, tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    reloaded = load_adapter(build_toy_model(WORDS, seed=0)[0], tmp_path / "adapter")
    yes, no = answer_token_ids(processor.tokenizer)
    inputs = _inputs(processor, ["a red circle moves left", "the blue square grows"])
    with torch.no_grad():
        a = peft_model(**inputs).logits[:, -1, [yes, no]].float().softmax(-1)[:, 0]
        b = reloaded(**inputs).logits[:, -1, [yes, no]].float().softmax(-1)[:, 0]
    assert torch.equal(a, b)


def test_generate_runs(toy):
    model, processor = toy
    inputs = _inputs(processor, ["a red circle moves left"])
    out = model.generate(**inputs, max_new_tokens=3, min_new_tokens=3, do_sample=False)
    assert out.shape == (1, inputs["input_ids"].shape[1] + 3)


def test_resolve_dtype():
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("auto", "cuda:0") == torch.bfloat16
    assert resolve_dtype("bfloat16", None) == torch.bfloat16
    with pytest.raises(ValueError):
        resolve_dtype("int8", None)


def test_toy_vocabulary_has_no_unknown_words():
    from hacalib.toyworld.grammar import vocabulary

    tok = build_toy_model(vocabulary(), seed=0)[1].tokenizer
    cap = "there are two shapes. the small blue cross moves left slowly, then it moves down quickly."
    for text in [prompts.entail_prompt(cap), prompts.mask_prompt(cap.replace("cross", "<mask>")),
                 prompts.haca_target(False, cap), prompts.entail_prompt(cap.capitalize())]:
        assert tok.unk_token_id not in tok(text).input_ids, text


def test_hub_preset_passes_pinned_revision_and_dtype(monkeypatch):
    from transformers import VideoLlavaForConditionalGeneration, VideoLlavaProcessor

    from hacalib.models import MODELS

    calls = []

    class _Model:
        def eval(self):
            return self

    monkeypatch.setattr(VideoLlavaForConditionalGeneration, "from_pretrained",
                        classmethod(lambda cls, name, **kw: calls.append(("model", name, kw)) or _Model()))
    monkeypatch.setattr(VideoLlavaProcessor, "from_pretrained",
                        classmethod(lambda cls, name, **kw: calls.append(("processor", name, kw)) or "proc"))
    load_model("videollava-7b", dtype="auto", device=None)
    spec = MODELS["videollava-7b"]
    want_dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    assert calls == [("model", spec.name_or_path, {"dtype": want_dtype, "revision": spec.revision}),
                     ("processor", spec.name_or_path, {"revision": spec.revision})]
    calls.clear()
    load_model("LanguageBind/Video-LLaVA-7B-hf", revision="abc123", dtype="bfloat16")
    assert calls[0] == ("model", "LanguageBind/Video-LLaVA-7B-hf", {"dtype": torch.bfloat16, "revision": "abc123"})
