"""bench/videochat2.py: a small run prints the JSON contract; packed and one-per-pair agree."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "videochat2.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_videochat2", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_small_run_prints_one_json_line_last(capsys):
    result = _bench().main(["--videos", "2", "--captions", "3", "--frames", "8", "--repeats", "1"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == result
    assert result["pairs"] == 6 and result["targets"] == 6 and result["bench"] == "videochat2"
    assert result["max_abs_diff"] < 1e-5 and result["train_loss_abs_diff"] < 1e-5  # float32 on the CPU
    for key in ("baseline_per_s", "improved_per_s", "train_baseline_per_s", "train_improved_per_s"):
        assert result[key] > 0


def test_the_7b_shape_is_videochat2_mistral_7b():
    """Built on the meta device (no memory): the GPU run's model has the paper model's size."""
    model, proc = _bench().build_7b("meta")
    billions = sum(p.numel() for p in model.parameters()) / 1e9
    assert 7.5 < billions < 7.8 and proc.num_video_tokens == 96  # Mistral 7.24B + UMT-L 0.29B + Q-Former 0.1B
    assert model.language_model.config.num_key_value_heads == 8


def test_the_parity_script_builds_the_original_input_as_hacalib_does():
    """bench/videochat2_parity.py's reading of the original model (segments embedded around the video), run on a
    stand-in with the original's attribute layout (`mistral_model` wrapped by peft once): same logits as ours."""
    from types import SimpleNamespace

    import torch
    from peft import LoraConfig, get_peft_model

    from hacalib.models import prompt_ids
    from hacalib.models.videochat2 import VIDEOCHAT2, build_tiny_videochat2

    spec = importlib.util.spec_from_file_location("videochat2_parity", BENCH.parent / "videochat2_parity.py")
    parity = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(parity)
    model, proc = build_tiny_videochat2(["a", "red", "circle"], seed=0)
    stand_in = SimpleNamespace(mistral_tokenizer=proc.tokenizer, mistral_model=get_peft_model(
        model.language_model, LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=True)))
    prompt = VIDEOCHAT2.template.entail_prompt("a red circle")
    with torch.no_grad():
        feats = model.get_video_features(torch.randn(1, 4, 3, 32, 32))
        theirs, ids = parity.original_logits(stand_in, prompt, feats, VIDEOCHAT2.template.video_token)
        ours_ids = torch.tensor(prompt_ids(proc.tokenizer, [prompt], 6, VIDEOCHAT2.template))
        ours = model(inputs_embeds=model.embed_video(ours_ids, feats)).logits[0, -1]
    vid = model.config.video_token_id
    assert ids == [-1 if i == vid else i for i in ours_ids[0].tolist()]
    torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=0)
