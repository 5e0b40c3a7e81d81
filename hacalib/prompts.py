"""Prompt templates, versioned: every table prints `PROMPT_VERSION` and `templates()` in its provenance.

A model family's chat template is a `ChatTemplate` (`hacalib.models.family`): the prompts of every task, the
answer separator and the video placeholder. `VIDEO_LLAVA` is Video-LLaVA's (`USER: <video>\\n... ASSISTANT:`);
the module-level functions below are its prompts. The answer follows the prompt after `answer_sep`; training
(`hacalib.training.examples.encode`) and scoring read the first answer token at the same place, so `Yes`/`No`
are tokenized identically in both. Change a template only together with `PROMPT_VERSION`.

May import: nothing of hacalib (a leaf).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PROMPT_VERSION = "v1"

VIDEO_TOKEN = "<video>"
MASK_TOKEN = "<mask>"
YES = "Yes"
NO = "No"
# Between "ASSISTANT:" and the answer. Llama's tokenizer turns " Yes" into the single piece "▁Yes".
ANSWER_SEP = " "

ENTAIL_TEMPLATE = 'USER: <video>\nDoes this video entail the description: "{caption}"? ASSISTANT:'
MASK_TEMPLATE = (
    'USER: <video>\nSome words of this description are hidden as <mask>: "{masked_caption}". '
    "Write the full description of the video. ASSISTANT:"
)
CAPTION_TEMPLATE = "USER: <video>\nDescribe the video. ASSISTANT:"
QA_TEMPLATE = "USER: <video>\n{question} ASSISTANT:"

# HACA's target for a contrast caption; the first answer token stays `No` in every format.
HACA_NEGATIVE_FORMATS = {
    "comma": "No, {correction}",
    "sentence": "No. {correction}",
    "no_only": "No",
}
DEFAULT_HACA_FORMAT = "comma"


@dataclass(frozen=True)
class ChatTemplate:
    """The prompts of one model family: each a template with one placeholder, plus how answers follow them.

    Attributes:
        entail, mask, caption, qa: templates with `{caption}`, `{masked_caption}`, none, `{question}`; each holds
            `video_token` once.
        answer_sep: text between a prompt and its answer.
        video_token: the placeholder the processor expands to the video's tokens.
    """

    entail: str
    mask: str
    caption: str
    qa: str
    answer_sep: str = ANSWER_SEP
    video_token: str = VIDEO_TOKEN

    def entail_prompt(self, caption: str) -> str:
        """The entailment question for one description (training and every P(yes) scorer)."""
        return self.entail.format(caption=caption.strip())

    def mask_prompt(self, masked_caption: str) -> str:
        """The masking-correction question; `masked_caption` already holds `MASK_TOKEN` where words were hidden."""
        return self.mask.format(masked_caption=masked_caption.strip())

    def caption_prompt(self) -> str:
        """The captioning question (toy pretraining, the generative readout)."""
        return self.caption

    def qa_prompt(self, question: str) -> str:
        """An open question about the video (toy pretraining, MSRVTT-QA)."""
        return self.qa.format(question=question.strip())


VIDEO_LLAVA = ChatTemplate(entail=ENTAIL_TEMPLATE, mask=MASK_TEMPLATE, caption=CAPTION_TEMPLATE, qa=QA_TEMPLATE)


# VideoChat2 (Mistral), the evaluation prompt of its stage-3 demo: `[INST] <Video>{video}</Video> [/INST]` as the
# first user turn, the question as a second `[INST] ... [/INST]` turn, the answer right after the final `[/INST]`.
# The tokenizer adds BOS (`<s>`); `<video>` expands to the 96 video tokens. docs/videochat2.md has the choices.
VIDEOCHAT2_VIDEO_TURN = "[INST] <Video>" + VIDEO_TOKEN + "</Video> [/INST] "
VIDEOCHAT2 = ChatTemplate(
    entail=VIDEOCHAT2_VIDEO_TURN + '[INST] Does this video entail the description: "{caption}"? [/INST]',
    mask=VIDEOCHAT2_VIDEO_TURN + '[INST] Some words of this description are hidden as <mask>: "{masked_caption}". '
    "Write the full description of the video. [/INST]",
    caption=VIDEOCHAT2_VIDEO_TURN + "[INST] Describe the video. [/INST]",
    qa=VIDEOCHAT2_VIDEO_TURN + "[INST] {question} [/INST]",
)

def entail_prompt(caption: str) -> str:
    """Video-LLaVA's entailment question for one description (`VIDEO_LLAVA.entail_prompt`)."""
    return VIDEO_LLAVA.entail_prompt(caption)


def mask_prompt(masked_caption: str) -> str:
    """Video-LLaVA's masking-correction question (`VIDEO_LLAVA.mask_prompt`)."""
    return VIDEO_LLAVA.mask_prompt(masked_caption)


def caption_prompt() -> str:
    """Video-LLaVA's captioning question (`VIDEO_LLAVA.caption_prompt`)."""
    return VIDEO_LLAVA.caption_prompt()


def qa_prompt(question: str) -> str:
    """Video-LLaVA's open question about the video (`VIDEO_LLAVA.qa_prompt`)."""
    return VIDEO_LLAVA.qa_prompt(question)


def entail_target(entails: bool) -> str:
    """Entailment-only baseline target: `Yes` for the true caption, `No` for the contrast caption."""
    return YES if entails else NO


def haca_target(entails: bool, correction: str, fmt: str = DEFAULT_HACA_FORMAT) -> str:
    """HACA target: `Yes` for the true caption, else `No` followed by the corrected (true) caption.

    Args:
        entails: whether the description in the prompt matches the video.
        correction: the true caption, written after `No` for a contrast caption.
        fmt: a key of `HACA_NEGATIVE_FORMATS` (default "comma": `No, {correction}`).
    """
    if entails:
        return YES
    if fmt not in HACA_NEGATIVE_FORMATS:
        raise ValueError(f"unknown HACA target format {fmt!r}; choose one of {sorted(HACA_NEGATIVE_FORMATS)}")
    return HACA_NEGATIVE_FORMATS[fmt].format(correction=correction.strip())


def templates() -> dict[str, str]:
    """Every template and constant that shapes a prompt, for provenance records."""
    return {
        "version": PROMPT_VERSION,
        "entail": ENTAIL_TEMPLATE,
        "mask": MASK_TEMPLATE,
        "caption": CAPTION_TEMPLATE,
        "qa": QA_TEMPLATE,
        "yes": YES,
        "no": NO,
        "answer_sep": ANSWER_SEP,
        "mask_token": MASK_TOKEN,
        **{f"haca_negative_{k}": v for k, v in HACA_NEGATIVE_FORMATS.items()},
    }


def template_texts() -> list[str]:
    """The literal text of all templates with placeholders removed (the toy tokenizer's prompt vocabulary)."""
    texts = [ENTAIL_TEMPLATE, MASK_TEMPLATE, CAPTION_TEMPLATE, QA_TEMPLATE, YES, NO, *HACA_NEGATIVE_FORMATS.values()]
    # placeholders and the <video>/<mask> tokens (added tokens of their own) are not words
    pattern = r"\{[a-z_]+\}|" + re.escape(VIDEO_TOKEN) + "|" + re.escape(MASK_TOKEN)
    return [re.sub(pattern, " ", t) for t in texts]
