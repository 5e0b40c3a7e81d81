"""`haca convert-videochat2` on synthetic stage files written with the original's key names and shapes."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import MistralConfig, MistralForCausalLM

from hacalib.cli import main as haca
from hacalib.errors import DataError
from hacalib.models import family_of, load_model
from hacalib.models.tokenizer import build_word_tokenizer
from hacalib.models.videochat2 import VIDEOCHAT2
from hacalib.models.videochat2.convert import convert
from hacalib.models.videochat2.tiny import template_words
from hacalib.scoring.pyes import p_yes
from hacalib.scoring.requests import ScoreRequest
from test_videochat2_original import DIMS, _lin, effective, original_checkpoint, reference_qformer, reference_vision

R, ALPHA = 4, 8.0
PROJ = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj",
        "mlp.down_proj"]


@pytest.fixture(scope="module")
def llm_dir(tmp_path_factory):
    """A tiny Mistral in a Hugging Face folder with its tokenizer (the --llm of the converter)."""
    folder = tmp_path_factory.mktemp("mistral")
    tok = build_word_tokenizer(["a", "red", "circle", "moves", "left", *template_words()])
    torch.manual_seed(5)
    cfg = MistralConfig(vocab_size=len(tok), hidden_size=DIMS["text_hidden"], intermediate_size=64, num_hidden_layers=1,
                        num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=False, sliding_window=None,
                        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    MistralForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _lora(llm_dir) -> dict[str, torch.Tensor]:
    """Stage-3 LoRA in the original's names: peft wrapped once, under `mistral_model.base_model.model.`."""
    g = torch.Generator().manual_seed(9)
    base = MistralForCausalLM.from_pretrained(llm_dir)
    out = {}
    for name in [f"model.layers.0.{p}" for p in PROJ] + ["lm_head"]:
        w = base.get_submodule(name).weight
        key = f"mistral_model.base_model.model.{name}"
        out[f"{key}.lora_A.default.weight"] = torch.randn(R, w.shape[1], generator=g) * 0.1
        out[f"{key}.lora_B.default.weight"] = torch.randn(w.shape[0], R, generator=g) * 0.1
    return out


def _write(tmp_path, files, llm_dir, *, with_lora=True):
    paths = {}
    for label, sd in files.items():
        if label == "stage3" and with_lora:
            sd = {**sd, **_lora(llm_dir)}
        paths[label] = tmp_path / f"{label}.pth"
        torch.save(sd if label == "stage1" else {"model": sd}, paths[label])  # stage 2/3 wrap it, as released
    return paths


def _convert(paths, llm_dir, out, **kw):
    return convert(stage1=paths["stage1"], stage2=paths.get("stage2"), stage3=paths.get("stage3"), llm=llm_dir,
                   out=out, num_vision_layers=DIMS["blocks"], vision_heads=DIMS["heads"], image_size=DIMS["image"],
                   qformer_heads=DIMS["qheads"], lora_alpha=ALPHA, dtype="float32", **kw)


@pytest.fixture(scope="module")
def converted(tmp_path_factory, llm_dir):
    tmp = tmp_path_factory.mktemp("conv")
    files = original_checkpoint()
    paths = _write(tmp, files, llm_dir)
    return files, paths, _convert(paths, llm_dir, tmp / "out")


def test_converted_folder_reloads_with_every_weight_where_the_original_puts_it(converted, llm_dir):
    files, paths, out = converted
    model, proc = load_model(out, dtype="float32")
    assert family_of(model) is VIDEOCHAT2 and family_of(proc) is VIDEOCHAT2
    assert model.config.num_query_tokens == DIMS["n_query"] + DIMS["n_extra"] == proc.num_video_tokens
    assert model.config.qformer_instruction_ids == [101, 3422, 1996, 2678, 1998, 3437, 1996, 3160, 1012, 102]
    sd = effective(files)
    params = dict(model.named_parameters())
    torch.testing.assert_close(params["vision_model.layers.1.attn.v_bias"], sd["vision_encoder.encoder.blocks.1.attn.v_bias"],
                               rtol=0, atol=0)  # stage 3 overrides stage 1
    torch.testing.assert_close(params["connector.query_tokens"],
                               torch.cat([sd["query_tokens"], sd["extra_query_tokens"]], dim=1), rtol=0, atol=0)
    torch.testing.assert_close(params["connector.qformer.encoder.layer.2.crossattention.attention.key.weight"],
                               sd["qformer.bert.encoder.layer.2.crossattention.self.key.weight"], rtol=0, atol=0)
    base, lora = MistralForCausalLM.from_pretrained(llm_dir), _lora(llm_dir)
    for name in [f"model.layers.0.{p}" for p in PROJ] + ["lm_head"]:
        key = f"mistral_model.base_model.model.{name}"
        merged = base.get_submodule(name).weight + ALPHA / R * lora[f"{key}.lora_B.default.weight"] @ lora[f"{key}.lora_A.default.weight"]
        torch.testing.assert_close(params[f"language_model.{name}.weight"], merged, rtol=0, atol=1e-6)
    torch.testing.assert_close(params["language_model.model.embed_tokens.weight"], base.model.embed_tokens.weight, rtol=0, atol=0)


def test_the_report_names_the_source_of_every_parameter(converted):
    _, paths, out = converted
    report = json.loads((out / "conversion_report.json").read_text())
    model, _ = load_model(out, dtype="float32")
    assert set(report["parameters"]) == {n for n, _ in model.named_parameters()}
    assert report["order"] == ["stage1", "llm", "stage2", "stage3", "lora merged into the llm weights"]
    bias = report["parameters"]["vision_model.layers.0.attn.q_bias"]
    assert bias["final"] == {"file": "stage3", "path": str(paths["stage3"]), "key": "vision_encoder.encoder.blocks.0.attn.q_bias"}
    assert [h["file"] for h in bias["history"]] == ["stage1", "stage3"]
    assert report["parameters"]["language_model.model.norm.weight"]["final"]["file"] == "llm"
    assert [h["key"] for h in report["parameters"]["connector.query_tokens"]["history"][-2:]] == ["query_tokens", "extra_query_tokens"]
    reasons = {i["key"]: i["reason"] for i in report["ignored"]}
    assert "runs only the first 2 blocks" in reasons["vision_encoder.encoder.blocks.2.attn.q_bias"]
    assert "qformer.cls" in reasons["qformer.cls.predictions.bias"]
    assert len(report["lora_merged"]) == 8 and all(m["r"] == R and m["alpha"] == ALPHA for m in report["lora_merged"])
    assert len(report["files"][0]["sha256"]) == 64


def test_converted_features_equal_the_original_equations_and_pyes_runs(converted):
    files, _, out = converted
    model, proc = load_model(out, dtype="float32")
    sd = effective(files)
    pixels = torch.randn(1, 8, 3, DIMS["image"], DIMS["image"], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = model.get_video_features(pixels)
    # the converter's instruction (the BERT ids of the demo's text) is what the reference must read
    ids = model.config.qformer_instruction_ids
    theirs = _lin(reference_qformer(sd, reference_vision(sd, pixels), instruction=ids), sd, "mistral_proj")
    assert float((ours - theirs).abs().max()) <= 1e-5
    frames = torch.randint(0, 256, (8, 64, 64, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)).numpy()
    reqs = [ScoreRequest(frames, c, video_id="v") for c in ("a red circle moves left", "a circle")]
    packed, naive = p_yes(model, proc, reqs), p_yes(model, proc, reqs, method="naive", batch_size=1)
    torch.testing.assert_close(torch.tensor(packed), torch.tensor(naive), rtol=0, atol=1e-5)


def _files_with(change):
    files = original_checkpoint()
    change(files)
    return files


@pytest.mark.parametrize("change, match", [
    (lambda f: f["stage2"].update({"qformer.bert.encoder.layer.0.attention.self.quary.weight": torch.zeros(2)}),
     r"stage2\.pth, key 'qformer\.bert\.encoder\.layer\.0\.attention\.self\.quary\.weight': maps to no VideoChat2"),
    (lambda f: [f[s].pop("vision_layernorm.weight", None) for s in f],
     r"key 'vision_model\.post_layernorm\.weight'"),
    (lambda f: f["stage3"].update({"vision_encoder.encoder.blocks.0.attn.q_bias": torch.zeros(DIMS["c"])}),
     r"stage3\.pth, key 'vision_encoder\.encoder\.blocks\.0\.attn\.q_bias': the vision encoder's q_bias of block 0 is all zeros"),
    (lambda f: f["stage3"].update({"mistral_proj.weight": torch.zeros(3, 3)}),
     r"stage3\.pth, key 'mistral_proj\.weight': shape \(3, 3\) but connector\.projection\.weight needs"),
    (lambda f: [f[s].pop("extra_query_tokens", None) for s in f], r"key 'extra_query_tokens'"),
])
def test_a_wrong_or_missing_key_is_named(tmp_path, llm_dir, change, match):
    paths = _write(tmp_path, _files_with(change), llm_dir, with_lora=False)
    with pytest.raises(DataError, match=match):
        _convert(paths, llm_dir, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_lora_keys_wrapped_twice_are_refused_by_name(tmp_path, llm_dir):
    """Wrapping LoRA twice renames keys (Ask-Anything issue #260); such a file must not load silently."""
    files = original_checkpoint()
    paths = _write(tmp_path, files, llm_dir, with_lora=False)
    sd = torch.load(paths["stage3"], weights_only=True)["model"]
    sd["mistral_model.base_model.model.base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight"] = torch.zeros(R, 40)
    torch.save({"model": sd}, paths["stage3"])
    with pytest.raises(DataError, match="base_model.model.base_model.model"):
        _convert(paths, llm_dir, tmp_path / "out")


def test_ignore_skips_a_key_on_purpose_and_records_it(tmp_path, llm_dir):
    files = _files_with(lambda f: f["stage2"].update({"vision_temp_embed": torch.zeros(1, 4, DIMS["c"])}))
    paths = _write(tmp_path, files, llm_dir, with_lora=False)
    out = _convert(paths, llm_dir, tmp_path / "out", ignore=[r"vision_temp_embed"])
    report = json.loads((out / "conversion_report.json").read_text())
    assert {"file": "stage2", "path": str(paths["stage2"]), "key": "vision_temp_embed", "reason": "--ignore"} in report["ignored"]


def test_a_file_with_pickled_objects_is_refused(tmp_path, llm_dir):
    paths = _write(tmp_path, original_checkpoint(), llm_dir, with_lora=False)
    torch.save({"model": torch.load(paths["stage2"], weights_only=True)["model"], "config": DataError("x", "y")},
               paths["stage2"])
    with pytest.raises(DataError, match=r"stage2\.pth: cannot be read with torch\.load\(weights_only=True\)"):
        _convert(paths, llm_dir, tmp_path / "out")


def test_the_haca_command(tmp_path, llm_dir, capsys):
    paths = _write(tmp_path, original_checkpoint(), llm_dir, with_lora=False)
    args = ["convert-videochat2", "--stage1", str(paths["stage1"]), "--stage2", str(paths["stage2"]),
            "--stage3", str(paths["stage3"]), "--llm", str(llm_dir), "--vision-layers", "2", "--vision-heads", "4",
            "--qformer-heads", "4", "--image-size", "64", "--dtype", "float32"]
    assert haca(args + ["--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "conversion_report.json").is_file()
    assert haca(args + ["--out", str(tmp_path / "out2"), "--vision-layers", "4"]) == 2  # the files hold 3 blocks
    assert "haca: error:" in (err := capsys.readouterr().err) and "vision_model.layers.3." in err
