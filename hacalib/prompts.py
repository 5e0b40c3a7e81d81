"""Prompt templates, versioned: every table prints `PROMPT_VERSION` and `templates()` in its provenance.

A model family's chat template is a `ChatTemplate` (`hacalib.models.family`): the prompts of every task, the
answer separator and the video placeholder. `VIDEO_LLAVA` is Video-LLaVA's (`USER: <video>\\n... ASSISTANT:`);
the module-level functions below are its prompts. The answer follows the prompt after `answer_sep`; training
(`hacalib.training.examples.encode`) and scoring read the first answer token at the same place, so `Yes`/`No`
are tokenized identically in both. Change a template only together with `PROMPT_VERSION`.

Evaluation may ask the entailment question in other published wordings (`ENTAIL_PROMPTS`: VELOCITI's and VideoCon's,
each versioned; `with_entail_prompt`), so the pretrained row can be checked against published numbers. Training
always uses the family's own question.

May import: nothing of hacalib (a leaf).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

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

# ------------------------------------------------------------------ entailment prompt options
# HACA's question (the default, what every row is trained and scored with) and the questions two published
# evaluations asked Video-LLaVA-style models, so a user with the weights can score the pretrained row the way the
# published numbers were made (`hacalib.report.reported`). Options change evaluation only, never training.
# Each is Video-LLaVA's chat text with one `{caption}`; the answer follows after `ANSWER_SEP`, so P(yes) is read at
# the prompt's last token ("ASSISTANT:" / "AI:"), where Llama-2 would generate "▁Yes" / "▁No" (tests check it with
# the real tokenizer). Change an option's text only together with its `version`.


@dataclass(frozen=True)
class EntailPrompt:
    """One named entailment question for Video-LLaVA.

    Attributes:
        name: the option's key in `ENTAIL_PROMPTS` (what `Experiment(prompt=...)` names).
        version: bumped whenever `template` changes; part of every non-default evaluation cache key.
        template: the full prompt text, with `VIDEO_TOKEN` once and one `{caption}`.
        source: where the text comes from (repository, commit, file).
        readout: how the source reads the answer, and where ours differs.
    """

    name: str
    version: str
    template: str
    source: str
    readout: str

    @property
    def key(self) -> str:
        """`name@version`: what cache keys and provenance record."""
        return f"{self.name}@{self.version}"


DEFAULT_ENTAIL_PROMPT = "haca"
ENTAIL_BENCHMARKS = ("velociti", "videocon", "ssv2", "corrections")  # the benchmarks that ask it

# katha-ai/VELOCITI, branch velociti_v1 (commit 109b117ba093d7c76adbb064d31d27d3ca303ca0, the arXiv v1 evaluation),
# video_llava/entailment.py: its Video-LLaVA template, verbatim but for the placeholder's name.
VELOCITI_TEMPLATE = (
    "USER: <video>Carefully watch the video and pay attention to the sequence of events, the details and actions "
    "of persons. Based on your observation, does the given video entail the caption?\nCaption: {caption}\n"
    "ASSISTANT:"
)
# Hritikbansal/videocon (commit 9a69520874644325f499cdaefd4eb2858048e350), src/prepare_data_for_inference.py: the
# mPLUG-Owl conversation VideoCon wraps every SSv2 query in, with mPLUG's `<|video|>` as Video-LLaVA's `<video>`
# and the prompt's trailing space moved into `ANSWER_SEP` ("AI:" + " Yes" is the text "AI: Yes").
VIDEOCON_TEMPLATE = (
    "The following is a conversation between a curious human and AI assistant. The assistant gives helpful, "
    "detailed, and polite answers to the user's questions.\nHuman: <video>\nHuman: Does this video entail the "
    'description: "{caption}"?\nAI:'
)

ENTAIL_PROMPTS = {
    p.name: p for p in (
        EntailPrompt("haca", PROMPT_VERSION, ENTAIL_TEMPLATE, "PROTOCOL.md, \"Prompts, targets and masking\" (our default)",
                     "P(yes) = p(Yes) / (p(Yes) + p(No)) at the last prompt token, float32"),
        EntailPrompt("velociti_v1", "v1", VELOCITI_TEMPLATE,
                     "katha-ai/VELOCITI@109b117 (branch velociti_v1) video_llava/entailment.py",
                     "VELOCITI: softmax over the vocabulary at the last position, p(Yes) / (p(Yes) + p(No)) with the "
                     "ids of tokenizer.encode('Yes'/'No') (3869 / 1939 for Llama-2), fp32 weights, 8 frames "
                     "(np.arange(0, T, T/8)); ours: the same ratio as sigmoid(logit_Yes - logit_No)"),
        EntailPrompt("videocon", "v1", VIDEOCON_TEMPLATE,
                     "Hritikbansal/videocon@9a69520 src/prepare_data_for_inference.py (mPLUG-Owl format)",
                     "VideoCon (mPLUG-Owl, bf16): softmax at the last non-pad token of 'AI: ', which its tokenizer "
                     "ends with a lone '▁' piece; ours reads after 'AI:', where Llama-2 puts '▁Yes' in 'AI: Yes'"),
    )
}


def entail_option(name: str = DEFAULT_ENTAIL_PROMPT) -> EntailPrompt:
    """The entailment prompt option `name` (a key of `ENTAIL_PROMPTS`); a clear error for any other name."""
    if name not in ENTAIL_PROMPTS:
        raise ValueError(f"unknown entailment prompt {name!r}; choose one of {sorted(ENTAIL_PROMPTS)}")
    return ENTAIL_PROMPTS[name]


def with_entail_prompt(template: ChatTemplate, name: str = DEFAULT_ENTAIL_PROMPT) -> ChatTemplate:
    """`template` with its entailment question replaced by option `name`; the default keeps the family's own.

    The options are Video-LLaVA's chat text, so another family (VideoChat2) accepts only the default.
    """
    option = entail_option(name)
    if name == DEFAULT_ENTAIL_PROMPT:
        return template
    if template.video_token != VIDEO_TOKEN or template.entail != ENTAIL_TEMPLATE:
        raise ValueError(f"entailment prompt {name!r} is written in Video-LLaVA's chat format; this model family "
                         f"takes only {DEFAULT_ENTAIL_PROMPT!r}")
    return replace(template, entail=option.template)


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


def templates(prompt: str = DEFAULT_ENTAIL_PROMPT) -> dict[str, str]:
    """Every template and constant that shapes a prompt, for provenance records; `prompt`: the entailment option an
    evaluation used (recorded, with its text as `entail`, when it is not the default)."""
    option = entail_option(prompt)
    chosen = {} if prompt == DEFAULT_ENTAIL_PROMPT else {"entail_prompt": option.key, "entail_source": option.source}
    return {
        "version": PROMPT_VERSION,
        **chosen,
        "entail": option.template,
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
