"""VideoChat2's Mistral prompt with the real Mistral tokenizer: the token ids hacalib feeds the model, against a
committed fixture made the original's way (segments around the video tokenized separately, BOS on the first only).

Needs ../shared/fixtures/tokenizers/mistral_v1/tokenizer.model and the PyPI packages `sentencepiece` and `protobuf`
(transformers reads a SentencePiece model with them); skipped with the reason when either is absent.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from hacalib import prompts
from hacalib.models.text import encode_answer, prompt_ids
from hacalib.models.videochat2 import VIDEOCHAT2, VideoChat2Processor, prepare_tokenizer
from hacalib.models.videochat2.processing import check_prompt_tokenization, segment_ids
from hacalib.training.examples import answer_token_ids

GOLDEN = json.loads((Path(__file__).parent / "golden" / "videochat2_mistral_prompt.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def mistral_dir(shared_fixtures, tmp_path_factory):
    src = shared_fixtures / "tokenizers" / "mistral_v1" / "tokenizer.model"
    if not src.is_file():
        pytest.skip(f"the Mistral tokenizer is not at {src}")
    for package in ("sentencepiece", "google.protobuf"):
        pytest.importorskip(package, reason=f"{package} is needed to read a SentencePiece tokenizer.model")
    folder = tmp_path_factory.mktemp("mistral_tok")
    shutil.copy(src, folder / "tokenizer.model")
    return folder


@pytest.fixture(scope="module")
def tokenizer(mistral_dir):
    from transformers import LlamaTokenizer

    return prepare_tokenizer(LlamaTokenizer.from_pretrained(str(mistral_dir), legacy=True))


def test_the_fixture_is_the_prompt_of_the_template():
    assert [c["prompt"] for c in GOLDEN["cases"]] == [
        VIDEOCHAT2.template.entail_prompt("A man walks to the left, then he sits down."),
        VIDEOCHAT2.template.qa_prompt("What is the man doing?")]
    assert GOLDEN["cases"][0]["prompt"].startswith("[INST] <Video><video></Video> [/INST] [INST] Does this video entail")
    assert GOLDEN["cases"][0]["prompt"].endswith('sits down."? [/INST]')


def test_prompt_ids_match_the_committed_fixture(tokenizer):
    assert tokenizer.convert_tokens_to_ids(prompts.VIDEO_TOKEN) == GOLDEN["video_token_id"] == 32000
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id) == (GOLDEN["bos_id"], GOLDEN["eos_id"]) == (1, 2)
    for case in GOLDEN["cases"]:
        ours = prompt_ids(tokenizer, [case["prompt"]], GOLDEN["num_video_tokens"], VIDEOCHAT2.template)[0]
        assert ours == case["input_ids"], case["kind"]
        assert segment_ids(tokenizer, case["prompt"], GOLDEN["num_video_tokens"]) == case["input_ids"]
        assert ours.count(1) == 1 and ours[0] == 1 and ours.count(32000) == 96  # BOS once, 96 video tokens
    check_prompt_tokenization(tokenizer, VIDEOCHAT2.template, 96)


def test_the_answer_position_is_after_the_final_inst(tokenizer):
    yes, no = answer_token_ids(tokenizer, VIDEOCHAT2.template)
    assert (yes, no) == (GOLDEN["yes_id"], GOLDEN["no_id"]) == (5592, 1770)
    case = GOLDEN["cases"][0]
    enc = encode_answer(tokenizer, case["prompt"], "Yes", 96, first_token=(yes, "Yes"), template=VIDEOCHAT2.template)
    k = case["answer_index"]
    assert enc["input_ids"][: k + 1] == case["input_ids"] and tokenizer.convert_ids_to_tokens(case["input_ids"][k]) == "]"
    assert enc["labels"][k + 1] == yes == enc["input_ids"][k + 1]  # the token after the prompt's last one is the answer
    assert all(label == -100 for label in enc["labels"][: k + 1]) and enc["input_ids"][-1] == 2
    no_enc = encode_answer(tokenizer, case["prompt"], "No, a man sits down.", 96, first_token=(no, "No"),
                           template=VIDEOCHAT2.template)
    assert no_enc["input_ids"][k + 1] == no


def test_the_processor_reloads_the_same_tokenization(tokenizer, tmp_path):
    proc = VideoChat2Processor(tokenizer, tokenizer_kwargs={"legacy": True})
    proc.save_pretrained(tmp_path / "p")
    again = VideoChat2Processor.from_pretrained(tmp_path / "p")
    case = GOLDEN["cases"][0]
    assert prompt_ids(again.tokenizer, [case["prompt"]], 96, VIDEOCHAT2.template)[0] == case["input_ids"]
    frames = torch.randint(0, 256, (4, 180, 320, 3), dtype=torch.uint8).numpy()
    assert again.preprocess([frames]).shape == (1, 4, 3, 224, 224)


def test_without_legacy_the_check_names_the_difference(mistral_dir):
    from transformers import LlamaTokenizer

    tok = prepare_tokenizer(LlamaTokenizer.from_pretrained(str(mistral_dir), legacy=False))
    with pytest.raises(ValueError, match="legacy=True"):
        check_prompt_tokenization(tok, VIDEOCHAT2.template, 96)


def test_the_fixture_is_what_sentencepiece_gives(shared_fixtures):
    spm = pytest.importorskip("sentencepiece", reason="sentencepiece not installed (only needed to re-derive the fixture)")
    sp = spm.SentencePieceProcessor(model_file=str(shared_fixtures / "tokenizers/mistral_v1/tokenizer.model"))
    for case in GOLDEN["cases"]:
        before, _, after = case["prompt"].partition(prompts.VIDEO_TOKEN)
        assert [1] + sp.encode(before) + [32000] * 96 + sp.encode(after) == case["input_ids"]


def test_conversion_with_the_mistral_tokenizer_reloads_the_original_tokenization(mistral_dir, tmp_path):
    """The converter's --llm path with Mistral's own tokenizer: the saved folder reloads with the fixture's ids."""
    from transformers import MistralConfig, MistralForCausalLM

    from hacalib.models import load_model
    from hacalib.models.videochat2.convert import convert
    from test_videochat2_original import DIMS, original_checkpoint

    llm = tmp_path / "mistral"
    shutil.copytree(mistral_dir, llm)
    torch.manual_seed(0)
    MistralForCausalLM(MistralConfig(vocab_size=32000, hidden_size=DIMS["text_hidden"], intermediate_size=64,
                                     num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=4,
                                     sliding_window=None, tie_word_embeddings=False)).save_pretrained(llm)
    paths = {}
    for label, sd in original_checkpoint().items():
        paths[label] = tmp_path / f"{label}.pth"
        torch.save(sd, paths[label])
    out = convert(stage1=paths["stage1"], stage2=paths["stage2"], stage3=paths["stage3"], llm=llm, out=tmp_path / "out",
                  num_vision_layers=DIMS["blocks"], vision_heads=DIMS["heads"], image_size=DIMS["image"],
                  qformer_heads=DIMS["qheads"], dtype="float32")
    model, proc = load_model(out, dtype="float32")
    assert model.config.video_token_id == 32000 and model.get_input_embeddings().weight.shape[0] == 32000
    case = GOLDEN["cases"][0]
    ids = prompt_ids(proc.tokenizer, [case["prompt"]], 96, VIDEOCHAT2.template)[0]
    assert [i for i in ids if i != 32000] == [i for i in case["input_ids"] if i != 32000]  # 6 video tokens here
    assert answer_token_ids(proc.tokenizer, VIDEOCHAT2.template) == (5592, 1770)
