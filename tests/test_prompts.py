"""The versioned prompt templates say exactly what DESIGN.md section 4 says."""

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
