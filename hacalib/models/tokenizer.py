"""A word-level tokenizer for the toy world: one token per word or punctuation mark.

Built with the `tokenizers` library (WordLevel model, whitespace + punctuation pre-tokenizer) and wrapped in
transformers' fast tokenizer class, so it saves and reloads with `save_pretrained`/`from_pretrained` like the
real Video-LLaVA tokenizer. Like Llama's tokenizer it prepends BOS and leaves EOS to the caller.

May import: tokenizers, transformers, `hacalib.prompts`.
"""

from __future__ import annotations

from typing import Iterable

from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from .. import prompts

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
IMAGE_TOKEN = "<image>"

# Whitespace splits words; every punctuation character becomes its own token ('"?' is two tokens).
PRE_TOKENIZER = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation("isolated")])


def split_words(text: str) -> list[str]:
    """The pieces the toy tokenizer sees in `text` (before the vocabulary lookup)."""
    return [piece for piece, _ in PRE_TOKENIZER.pre_tokenize_str(text)]


def build_word_tokenizer(words: Iterable[str]) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over `words` + every word of the prompt templates + special tokens.

    Args:
        words: the toy vocabulary (captions, questions, answers); multi-word strings are split like text.
            Each word is also added with a capitalised first letter, for sentence-initial words.

    Ids: 0 pad, 1 bos, 2 eos, 3 unk, then `<video>`, `<image>`, `<mask>`, then the words sorted, so the same
    words always give the same ids whatever their order.
    """
    pieces: set[str] = set()
    for text in [*words, *prompts.template_texts()]:
        for piece in split_words(text):
            pieces.update({piece, piece[:1].upper() + piece[1:]})
    added = [prompts.VIDEO_TOKEN, IMAGE_TOKEN, prompts.MASK_TOKEN]
    specials = [PAD, BOS, EOS, UNK]
    vocab_list = specials + added + sorted(pieces - set(specials) - set(added))
    vocab = {tok: i for i, tok in enumerate(vocab_list)}

    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = PRE_TOKENIZER
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, vocab[BOS])]
    )
    # Added tokens are matched before pre-tokenization, so "<video><video>" stays two tokens, not "<", "video", ...
    # `<mask>` is not special: decoding with skip_special_tokens keeps it visible.
    tok.add_special_tokens([AddedToken(t, normalized=False) for t in [PAD, BOS, EOS, UNK, prompts.VIDEO_TOKEN, IMAGE_TOKEN]])
    tok.add_tokens([AddedToken(prompts.MASK_TOKEN, normalized=False, special=False)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        pad_token=PAD,
        model_max_length=4096,
        padding_side="right",
    )
