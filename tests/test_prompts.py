"""The versioned prompt templates say exactly what PROTOCOL.md, "Prompts, targets and masking", says."""

from __future__ import annotations

import pytest

from hacalib import prompts


def test_entailment_question_is_exact():
    assert prompts.PROMPT_VERSION == "v1"
    assert (
        prompts.entail_prompt("A man rides a horse.")
        == 'USER: <video>\nDoes this video entail the description: "A man rides a horse."? ASSISTANT:'
    )


def test_targets():
    assert prompts.entail_target(True) == "Yes"
    assert prompts.entail_target(False) == "No"
    assert prompts.haca_target(True, "a cat sleeps") == "Yes"
    assert prompts.haca_target(False, "a cat sleeps") == "No, a cat sleeps"
    assert prompts.haca_target(False, "a cat sleeps", "sentence") == "No. a cat sleeps"
    for fmt in prompts.HACA_NEGATIVE_FORMATS:  # every format keeps `No` as the first word
        assert prompts.haca_target(False, "x", fmt).startswith("No")
    with pytest.raises(ValueError, match="unknown HACA target format"):
        prompts.haca_target(False, "x", "bogus")


def test_other_prompts_hold_one_video_token():
    for p in [prompts.mask_prompt("a <mask> sleeps"), prompts.caption_prompt(), prompts.qa_prompt("what is it?")]:
        assert p.startswith("USER: <video>\n") and p.endswith(" ASSISTANT:")
        assert p.count(prompts.VIDEO_TOKEN) == 1
    assert '"a <mask> sleeps"' in prompts.mask_prompt("a <mask> sleeps")
    assert "what is it?" in prompts.qa_prompt("what is it?")


def test_templates_record_version_and_text():
    t = prompts.templates()
    assert t["version"] == prompts.PROMPT_VERSION
    assert t["entail"] == prompts.ENTAIL_TEMPLATE
    assert all("{" not in text for text in prompts.template_texts())


# ---------------------------------------------------------------- entailment prompt options (issue 18 item 6)

def test_entailment_options_are_the_published_texts():
    # katha-ai/VELOCITI@109b117 (velociti_v1) video_llava/entailment.py, `{}` named `{caption}`
    assert prompts.ENTAIL_PROMPTS["velociti_v1"].template.format(caption="A man sits.") == (
        "USER: <video>Carefully watch the video and pay attention to the sequence of events, the details and actions "
        "of persons. Based on your observation, does the given video entail the caption?\nCaption: A man sits.\n"
        "ASSISTANT:")
    # Hritikbansal/videocon@9a69520 src/prepare_data_for_inference.py; `<|video|>` -> `<video>`, trailing space
    # -> ANSWER_SEP: the prompt plus " Yes" is VideoCon's training text with Video-LLaVA's placeholder
    videocon = prompts.ENTAIL_PROMPTS["videocon"].template.format(caption="A man sits.") + prompts.ANSWER_SEP + "Yes"
    assert videocon == (
        "The following is a conversation between a curious human and AI assistant. The assistant gives helpful, "
        "detailed, and polite answers to the user's questions.\nHuman: <video>\nHuman: Does this video entail the "
        'description: "A man sits."?\nAI: Yes')
    assert prompts.ENTAIL_PROMPTS[prompts.DEFAULT_ENTAIL_PROMPT].template == prompts.ENTAIL_TEMPLATE
    for option in prompts.ENTAIL_PROMPTS.values():
        assert option.template.count(prompts.VIDEO_TOKEN) == 1 and option.template.count("{caption}") == 1
        assert option.source and option.readout and option.key == f"{option.name}@{option.version}"


def test_entailment_option_replaces_only_the_entailment_question():
    assert prompts.with_entail_prompt(prompts.VIDEO_LLAVA) is prompts.VIDEO_LLAVA
    assert prompts.with_entail_prompt(prompts.VIDEOCHAT2, "haca") is prompts.VIDEOCHAT2  # the family's own
    t = prompts.with_entail_prompt(prompts.VIDEO_LLAVA, "velociti_v1")
    assert t.entail_prompt(" A man sits. ").endswith("Caption: A man sits.\nASSISTANT:")
    assert (t.mask, t.caption, t.qa, t.answer_sep) == (prompts.MASK_TEMPLATE, prompts.CAPTION_TEMPLATE,
                                                       prompts.QA_TEMPLATE, prompts.ANSWER_SEP)
    with pytest.raises(ValueError, match="Video-LLaVA's chat format"):
        prompts.with_entail_prompt(prompts.VIDEOCHAT2, "videocon")
    with pytest.raises(ValueError, match="unknown entailment prompt 'bogus'"):
        prompts.with_entail_prompt(prompts.VIDEO_LLAVA, "bogus")


def test_provenance_records_a_non_default_option():
    assert prompts.templates() == {**prompts.templates("haca")}
    assert "entail_prompt" not in prompts.templates()
    t = prompts.templates("videocon")
    assert t["entail_prompt"] == "videocon@v1" and t["entail"] == prompts.VIDEOCON_TEMPLATE


@pytest.mark.parametrize("name", sorted(prompts.ENTAIL_PROMPTS))
def test_answer_position_with_the_real_llama2_tokenizer(name, shared_fixtures):
    """Each option's P(yes) position: the prompt's tokens are a prefix of prompt + answer, the last one is the ':' of
    "ASSISTANT:" / "AI:", and the next token is "▁Yes" (3869) / "▁No" (1939), the ids the published scripts use."""
    from hacalib.models.text import answer_token_ids, encode_answer
    from hacalib.models.tiny7b import build_tokenizer

    tok = build_tokenizer(shared_fixtures / "tokenizers" / "llama2" / "tokenizer.model")
    template = prompts.with_entail_prompt(prompts.VIDEO_LLAVA, name)
    assert answer_token_ids(tok, template) == (3869, 1939)
    # VELOCITI and VideoCon take the ids as tokenizer.encode('Yes' / 'No', add_special_tokens=False)[0]
    published_ids = [tok.encode(word, add_special_tokens=False)[0] for word in ("Yes", "No")]
    assert published_ids == [3869, 1939]
    prompt = template.entail_prompt("A soccer team plays on a field.")
    enc = encode_answer(tok, prompt, "No, a basketball team plays on a court.", 2056, template=template)
    ids, labels = enc["input_ids"], enc["labels"]
    answer_at = next(i for i, x in enumerate(labels) if x != -100)
    assert ids[0] == 1 and ids.count(32001) == 2056  # BOS, then the expanded video
    assert ids[answer_at - 1] == tok.convert_tokens_to_ids(":")
    assert ids[answer_at:answer_at + 2] == [1939, 29892]  # "▁No" ","
    assert encode_answer(tok, prompt, "Yes", template=template)["input_ids"][answer_at - 2055] == 3869


def test_videocon_option_is_the_prompt_in_videocons_published_ssv2_matrix():
    """Every query of VideoCon's SSv2-Temporal matrix (shipped in hacalib/samples) is the `videocon` option around
    the template, with mPLUG-Owl's placeholder and the trailing space the option moves into ANSWER_SEP."""
    import csv

    from hacalib.data.ssv2 import extract_template
    from hacalib.samples import SSV2_TEMPORAL_MATRIX

    with open(SSV2_TEMPORAL_MATRIX, encoding="utf-8", newline="") as f:
        captions = {row["caption"] for row in csv.DictReader(f)}
    mplug = prompts.VIDEOCON_TEMPLATE.replace(prompts.VIDEO_TOKEN, "<|video|>")
    assert len(captions) == 18
    for caption in captions:
        assert caption == mplug.format(caption=extract_template(caption)) + prompts.ANSWER_SEP
