"""Examples per objective (PROTOCOL.md, "Prompts, targets and masking") and their encoding with labels."""

from __future__ import annotations

import pytest

from hacalib import prompts
from hacalib.data.videocon import Triplet
from hacalib.errors import DataError
from hacalib.models import build_word_tokenizer
from hacalib.training.examples import OBJECTIVES, Example, answer_token_ids, build_examples, count_by_kind, encode
from hacalib.training.masking import WordClassTagger

CLASSES = {"a": "DET", "the": "DET", "red": "ADJ", "blue": "ADJ", "circle": "NOUN", "square": "NOUN",
           "moves": "VERB", "grows": "VERB", "left": "ADV", "right": "ADV", "then": "ADV", "it": "PRON"}
TAGGER = WordClassTagger(lambda w: CLASSES[w.lower()])
TRIPLETS = [
    Triplet("v1.mp4", "a blue circle moves left", "a red circle moves left", "attribute", 0),
    Triplet("v1.mp4", "a red square moves left", "a red circle moves left", "object", 1),
    Triplet("v2.mp4", "the square grows then it moves right", "the square moves right then it grows", "flip", 2),
]


def test_entail_examples():
    ex = build_examples("entail", TRIPLETS, seed=0, tagger=TAGGER)
    assert ex[:3] == [
        Example("v1.mp4", prompts.entail_prompt("a red circle moves left"), "Yes", "pos"),
        Example("v1.mp4", prompts.entail_prompt("a blue circle moves left"), "No", "neg"),
        # the true caption of v1 already has its "pos" example
        Example("v1.mp4", prompts.entail_prompt("a red square moves left"), "No", "neg"),
    ]
    assert ex[0].prompt == 'USER: <video>\nDoes this video entail the description: "a red circle moves left"? ASSISTANT:'
    assert count_by_kind(ex) == {"pos": 2, "neg": 3}
    assert count_by_kind(build_examples("entail", TRIPLETS, dedupe_pos=False)) == {"pos": 3, "neg": 3}


def test_haca_examples():
    ex = build_examples("haca", TRIPLETS, seed=0, tagger=TAGGER)
    assert [(e.kind, e.target) for e in ex] == [
        ("pos", "Yes"),
        ("neg", "No, a red circle moves left"),
        ("neg", "No, a red circle moves left"),
        ("pos", "Yes"),
        ("neg", "No, the square moves right then it grows"),
    ]
    assert ex[4].prompt == prompts.entail_prompt("the square grows then it moves right")
    assert build_examples("haca", TRIPLETS, haca_format="sentence")[1].target == "No. a red circle moves left"


def test_haca_mask_adds_one_mask_example_per_true_caption():
    ex = build_examples("haca_mask", TRIPLETS, mask_ratio=0.45, seed=0, tagger=TAGGER)
    haca = build_examples("haca", TRIPLETS)
    assert [e for e in ex if e.kind != "mask"] == haca
    masks = [e for e in ex if e.kind == "mask"]
    assert [(e.video, e.target) for e in masks] == [("v1.mp4", "a red circle moves left"),
                                                    ("v2.mp4", "the square moves right then it grows")]
    for e in masks:
        assert e.prompt.startswith("USER: <video>\n") and e.prompt.endswith("ASSISTANT:")
        assert e.prompt.count(prompts.MASK_TOKEN) == 1 + 2  # the instruction names it once; 2 of 4 words hidden
    # same seed, same masks; the same videos for every objective
    assert ex == build_examples("haca_mask", TRIPLETS, mask_ratio=0.45, seed=0, tagger=TAGGER)
    videos = {obj: {e.video for e in build_examples(obj, TRIPLETS, tagger=TAGGER)} for obj in OBJECTIVES}
    assert videos["entail"] == videos["haca"] == videos["haca_mask"] == {"v1.mp4", "v2.mp4"}


def test_bad_input():
    with pytest.raises(ValueError, match="unknown objective"):
        build_examples("caption", TRIPLETS)
    bad = [{"video": "v.mp4", "description": " ", "correction": "a red circle"}]
    with pytest.raises(DataError, match=r"train\.csv, row 0, key 'description'"):
        build_examples("entail", bad, source="train.csv")


@pytest.fixture(scope="module")
def tok():
    return build_word_tokenizer(CLASSES)


def test_encode_labels_only_target_and_eos(tok):
    ex = Example("v1.mp4", prompts.entail_prompt("a blue circle moves left"), "No, a red circle moves left", "neg")
    enc = encode(ex, tok)
    tokens = tok.convert_ids_to_tokens(enc["input_ids"])
    assert tokens == ["<s>", "USER", ":", "<video>", "Does", "this", "video", "entail", "the", "description", ":",
                      '"', "a", "blue", "circle", "moves", "left", '"', "?", "ASSISTANT", ":",
                      "No", ",", "a", "red", "circle", "moves", "left", "</s>"]
    labelled = [t for t, label in zip(tokens, enc["labels"]) if label != -100]
    assert labelled == ["No", ",", "a", "red", "circle", "moves", "left", "</s>"]
    assert [label for label in enc["labels"] if label != -100] == enc["input_ids"][-8:]
    assert enc["attention_mask"] == [1] * len(tokens)


def test_encode_expands_video_token(tok):
    ex = Example("v", prompts.entail_prompt("a red circle"), "Yes", "pos")
    enc = encode(ex, tok, num_video_tokens=5)
    video_id = tok.convert_tokens_to_ids("<video>")
    assert enc["input_ids"][3:8] == [video_id] * 5 and enc["input_ids"][8] != video_id
    assert enc["labels"][:-2] == [-100] * (len(enc["labels"]) - 2)
    with pytest.raises(ValueError, match="one <video>"):
        encode(Example("v", "USER: hello ASSISTANT:", "Yes", "pos"), tok, num_video_tokens=5)


def test_answer_token_ids_match_first_target_token(tok):
    yes, no = answer_token_ids(tok)
    for e in build_examples("haca", TRIPLETS):
        enc = encode(e, tok)
        first = next(label for label in enc["labels"] if label != -100)
        assert first == (yes if e.kind == "pos" else no)


def _sentencepiece_like_tokenizer():
    """A Llama-style tokenizer (BPE over "▁"-prefixed words, BOS prepended) trained on a few prompts."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    corpus = [prompts.entail_prompt(c) + " " + t for c in ["a man rides a horse", "a dog runs"]
              for t in ["Yes", "No, a man rides a horse", "No"]] * 20
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=200, special_tokens=["<unk>", "<s>", "</s>", "<video>"],
                                                        show_progress=False))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


def test_answer_tokens_with_a_sentencepiece_like_tokenizer():
    t = _sentencepiece_like_tokenizer()
    yes, no = answer_token_ids(t)
    assert t.convert_ids_to_tokens([yes, no]) == ["▁Yes", "▁No"]  # the space after "ASSISTANT:" joins the answer
    pos = Example("v", prompts.entail_prompt("a dog runs"), "Yes", "pos")
    enc = encode(pos, t, num_video_tokens=3, answer_ids=(yes, no))
    assert [x for x in enc["labels"] if x != -100] == [yes, t.eos_token_id]
    # this BPE learned the piece "▁No,": HACA's "No, ..." would not start with the token P(yes) reads
    neg = Example("v", prompts.entail_prompt("a dog runs"), "No, a man rides a horse", "neg")
    assert t.convert_ids_to_tokens(encode(neg, t)["input_ids"])[-7] == "▁No,"
    with pytest.raises(ValueError, match="does not start with the No token"):
        encode(neg, t, answer_ids=(yes, no))
