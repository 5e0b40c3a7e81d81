"""Per-item evaluation of one model on each benchmark: tidy DataFrames, one row per scored item.

Aggregation into tables (metrics, seeds, confidence intervals) is `hacalib.report.tables`; these functions only run
the model. Every P(yes) comes from `hacalib.scoring.pyes.p_yes` (packed prefix-reuse scorer by default, float32).
`evaluate_toy_model` is the sanity report of a pretrained toy base model.

May import: pandas, torch, `hacalib.data`, `hacalib.errors`, `hacalib.models`, the other `hacalib.scoring` modules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, MutableMapping, Sequence

import pandas as pd
import torch

from ..data import load_msrvtt_qa, load_retrieval_matrix, load_velociti, load_videocon
from ..data.integrity import check_videos
from ..data.layout import DataRoot
from ..data.ssv2 import extract_template
from ..errors import DataError
from ..metrics.controls import other_video
from .answers_file import generate_to_file
from .generation import CORRECTION_MAX_NEW_TOKENS, correction_prompts, generate_texts, qa_inputs
from .derived import judge_answers, measure_corrections
from .loglik import caption_loglik
from .pyes import p_yes
from .requests import ScoreRequest
from .results_file import score_to_file
from .shards import Shard, sharded_loglik, sharded_scores, sharded_texts


def _limit(items: Sequence, limit: int | None) -> Sequence:
    return items if limit is None else items[:limit]


def _needs_file(shard: Shard | None, resume_file: str | Path | None) -> None:
    if shard is not None and resume_file is None:
        raise ValueError("an evaluation shared by several processes (shard=...) needs a resume_file: each process "
                         "writes its share beside it")


def _scores(model: Any, processor: Any, requests: list[ScoreRequest], resume_file: str | Path | None,
            shard: Shard | None = None, **score_kw: Any):
    """P(yes) of the requests; with `resume_file`, through `score_to_file` (kept per finished video, resumable); with
    `shard`, this process's share of them and then all (`hacalib.scoring.shards`)."""
    _needs_file(shard, resume_file)
    if shard is not None:
        return sharded_scores(model, processor, requests, resume_file, shard, **score_kw)
    if resume_file is None:
        return p_yes(model, processor, requests, **score_kw)
    return score_to_file(model, processor, requests, resume_file, **score_kw)


def _texts(model: Any, processor: Any, requests: list[ScoreRequest], prompts: list[str],
           resume_file: str | Path | None, shard: Shard | None = None, **gen_kw: Any) -> list[str]:
    """Greedy answers; with `resume_file`, through `generate_to_file` (kept per finished video, resumable); with
    `shard`, as `_scores`."""
    _needs_file(shard, resume_file)
    if shard is not None:
        return sharded_texts(model, processor, requests, prompts, resume_file, shard, **gen_kw)
    if resume_file is None:
        return generate_texts(model, processor, requests, prompts, **gen_kw)
    return generate_to_file(model, processor, requests, prompts, resume_file, **gen_kw)


def _require_videos(videos: Sequence[tuple[Any, Any, int | None, str | None]], num_frames: int = 8) -> None:
    """Every (video path, source file, row, key) of the items about to be scored must exist and decode (or match the
    toy world's manifest): checked before scoring, so a missing or corrupt file names the benchmark file and its
    row/key instead of stopping a long evaluation halfway (`hacalib.data.integrity`)."""
    check_videos(videos, num_frames=num_frames, what="videos before scoring")


def velociti_items(model: Any, processor: Any, root: DataRoot, *, tests: Sequence[str] | None = None,
                   limit_per_test: int | None = None, video_cache: MutableMapping | None = None,
                   resume_file: str | Path | None = None, shard: Shard | None = None,
                   **score_kw: Any) -> pd.DataFrame:
    """P(yes) of the positive and the negative caption of every VELOCITI item.

    Returns columns test, video_id, event, pos, neg, p_pos, p_neg. For `control` the negative is another video's
    caption scored on the same video (VELOCITI's text control). With `resume_file`, scores are also kept there per
    finished video, and a call interrupted by a kill continues from it (`hacalib.scoring.results_file.score_to_file`).
    With `shard` (one of several processes; needs `resume_file`), this process scores its share of the videos into
    its own file beside `resume_file` and, once every process is done, returns the whole frame
    (`hacalib.scoring.shards`); the same holds for every evaluation below.
    """
    chosen = [it for its in _velociti_by_test(root, tests, limit_per_test, score_kw.get("num_frames", 8))
              for it in its]
    requests = [ScoreRequest(it.video_path, cap) for it in chosen for cap in (it.pos, it.neg)]
    scores = _scores(model, processor, requests, resume_file, shard, video_cache=video_cache, **score_kw)
    return pd.DataFrame({
        "test": [it.test for it in chosen], "video_id": [it.video_id for it in chosen],
        "event": [it.event for it in chosen], "pos": [it.pos for it in chosen], "neg": [it.neg for it in chosen],
        "p_pos": scores[0::2], "p_neg": scores[1::2],
    })


def _velociti_by_test(root: DataRoot, tests: Sequence[str] | None, limit_per_test: int | None,
                      num_frames: int) -> list[list]:
    """The VELOCITI items an evaluation scores, per test (the first `limit_per_test` of each), every video checked."""
    by_test: dict[str, list] = {}
    for it in load_velociti(root.velociti_dir, tests=tests, video_root=root.velociti_videos):
        by_test.setdefault(it.test, []).append(it)
    chosen = [list(_limit(its, limit_per_test)) for its in by_test.values()]
    _require_videos([(it.video_path, root.velociti_test(it.test), None, f"{it.video_id}/{it.event}")
                     for its in chosen for it in its], num_frames)
    return chosen


def heldout_rows(root: DataRoot, split: str = "test", limit: int | None = None, duplicates: str = "error") -> list:
    """The VideoCon rows of `split` (the first `limit`), every video checked to exist before any scoring.
    `duplicates`: exact repeated rows, as `hacalib.data.load_videocon` (the preset's choice, as for training)."""
    rows = [r for r in load_videocon(root.videocon_csv, video_root=root.videocon_videos, duplicates=duplicates)
            if r.split == split]
    rows = list(_limit(rows, limit))
    _require_videos([(r.video_path, root.videocon_csv, r.row, "videopath") for r in rows])
    return rows


def videocon_pairs(model: Any, processor: Any, root: DataRoot, *, split: str = "test", limit: int | None = None,
                   duplicates: str = "error",
                   video_cache: MutableMapping | None = None, resume_file: str | Path | None = None,
                   shard: Shard | None = None, **score_kw: Any) -> pd.DataFrame:
    """P(yes) of the true and the contrast caption of each held-out VideoCon row (pairwise accuracy per type).
    `resume_file`: as for `velociti_items`.

    Returns columns misalignment, video, caption, neg_caption, p_true, p_false.
    """
    rows = heldout_rows(root, split, limit, duplicates)
    requests = [ScoreRequest(r.video_path, cap) for r in rows for cap in (r.caption, r.neg_caption)]
    scores = _scores(model, processor, requests, resume_file, shard, video_cache=video_cache, **score_kw)
    return pd.DataFrame({
        "misalignment": [r.misalignment for r in rows], "video": [r.videopath for r in rows],
        "caption": [r.caption for r in rows], "neg_caption": [r.neg_caption for r in rows],
        "p_true": scores[0::2], "p_false": scores[1::2],
    })


def videocon_loglik(model: Any, processor: Any, root: DataRoot, *, split: str = "test", limit: int | None = None,
                    duplicates: str = "error", video_cache: MutableMapping | None = None,
                    resume_file: str | Path | None = None, shard: Shard | None = None, **score_kw: Any) -> pd.DataFrame:
    """The generative readout of the held-out VideoCon pairs: log p(caption | video) of the true and the contrast
    caption as the answer to the captioning prompt (`hacalib.scoring.loglik.caption_loglik`, summed over the caption's tokens
    and EOS), on the row's own video and, as a control, on the next row's video: a preference that survives the
    wrong video comes from the text alone, not from what the model sees. (With a single row the "other" video is
    the row's own, and the control says nothing.)

    Returns columns misalignment, video, other_video, caption, neg_caption, ll_true, ll_false, ll_true_other,
    ll_false_other. `resume_file` is used only with `shard` (each process's share is written whole beside it).
    """
    rows = heldout_rows(root, split, limit, duplicates)
    others = rows[1:] + rows[:1]
    ll = _pair_logliks(model, processor, [(r.video_path, o.video_path, r.caption, r.neg_caption)
                                          for r, o in zip(rows, others)], resume_file, shard,
                       video_cache=video_cache, **score_kw)
    return pd.DataFrame({
        "misalignment": [r.misalignment for r in rows], "video": [r.videopath for r in rows],
        "other_video": [o.videopath for o in others], "caption": [r.caption for r in rows],
        "neg_caption": [r.neg_caption for r in rows], "ll_true": ll[:, 0], "ll_false": ll[:, 1],
        "ll_true_other": ll[:, 2], "ll_false_other": ll[:, 3],
    })


def _logliks(model: Any, processor: Any, requests: list[ScoreRequest], resume_file: str | Path | None,
             shard: Shard | None, **score_kw: Any):
    """Caption log-likelihoods of the requests, in this process or (with `shard`) shared as `sharded_loglik`."""
    if shard is not None:  # `resume_file` is used only here: one-process log-likelihood is not kept per video
        _needs_file(shard, resume_file)
        return sharded_loglik(model, processor, requests, resume_file, shard, **score_kw)
    return caption_loglik(model, processor, requests, **score_kw)


def _pair_logliks(model: Any, processor: Any, pairs: Sequence[tuple], resume_file: str | Path | None,
                  shard: Shard | None, **score_kw: Any):
    """(pairs, 4) log-likelihoods of each (own video, other video, true caption, contrast caption): true and
    contrast on the own video, then on the other one (the text-prior control of the perception readouts)."""
    requests = [ScoreRequest(v, cap) for own, other, true, false in pairs for v in (own, other)
                for cap in (true, false)]
    return _logliks(model, processor, requests, resume_file, shard, **score_kw).reshape(len(pairs), 4)


def velociti_loglik(model: Any, processor: Any, root: DataRoot, *, tests: Sequence[str] | None = None,
                    limit_per_test: int | None = None, video_cache: MutableMapping | None = None,
                    resume_file: str | Path | None = None, shard: Shard | None = None,
                    **score_kw: Any) -> pd.DataFrame:
    """The generative readout of VELOCITI: log p(caption | video) of each item's positive and negative caption as
    the answer to the captioning prompt, on the item's own video and, as the text-prior control, on the video of the
    next item of the same test that shows another video. The same items as `velociti_items`.

    Returns columns test, video_id, event, other_video_id, pos, neg, ll_pos, ll_neg, ll_pos_other, ll_neg_other.
    `resume_file` is used only with `shard`, as for `videocon_loglik`.
    """
    chosen, others = [], []
    for its in _velociti_by_test(root, tests, limit_per_test, score_kw.get("num_frames", 8)):
        chosen += its
        others += [its[j] for j in other_video([it.video_id for it in its])]
    ll = _pair_logliks(model, processor, [(it.video_path, o.video_path, it.pos, it.neg)
                                          for it, o in zip(chosen, others)], resume_file, shard,
                       video_cache=video_cache, **score_kw)
    return pd.DataFrame({
        "test": [it.test for it in chosen], "video_id": [it.video_id for it in chosen],
        "event": [it.event for it in chosen], "other_video_id": [o.video_id for o in others],
        "pos": [it.pos for it in chosen], "neg": [it.neg for it in chosen],
        "ll_pos": ll[:, 0], "ll_neg": ll[:, 1], "ll_pos_other": ll[:, 2], "ll_neg_other": ll[:, 3],
    })


def retrieval_loglik(model: Any, processor: Any, root: DataRoot, *, video_cache: MutableMapping | None = None,
                     resume_file: str | Path | None = None, shard: Shard | None = None,
                     **score_kw: Any) -> pd.DataFrame:
    """The generative readout of every retrieval matrix: log p(template | video) of every (query template, video)
    pair, the template as the answer to the captioning prompt. A pair of templates (one the video matches, one it
    does not) is read on the video and, as the control, on another video that matches neither
    (`hacalib.report.perception.retrieval_pairs`).

    Returns columns benchmark, query, video, ll, match. `resume_file` is used only with `shard`.
    """
    frames = []
    for name in root.ssv2_names():
        matrix = load_retrieval_matrix(root.ssv2_matrix(name))
        videos = [str(root.ssv2_videos / v) for v in matrix.videos]
        first_row = {r.videopath: r.row for r in reversed(matrix.rows)}
        _require_videos([(root.ssv2_videos / v, matrix.path, first_row[v], "videopath") for v in matrix.videos],
                        score_kw.get("num_frames", 8))
        requests = [ScoreRequest(v, extract_template(q)) for v in videos for q in matrix.queries]
        file = None if resume_file is None else Path(resume_file).with_name(f"{Path(resume_file).stem}_{name}.csv")
        ll = _logliks(model, processor, requests, file, shard, video_cache=video_cache, **score_kw)
        ll = ll.reshape(len(videos), len(matrix.queries))
        frames.append(pd.DataFrame({
            "benchmark": name, "query": [q for _ in videos for q in matrix.queries],
            "video": [v for v in matrix.videos for _ in matrix.queries], "ll": ll.reshape(-1),
            "match": matrix.match.T.reshape(-1).astype(int)}))
    return pd.concat(frames, ignore_index=True)


def retrieval_scores(model: Any, processor: Any, root: DataRoot, name: str, *,
                     video_cache: MutableMapping | None = None, resume_file: str | Path | None = None,
                     shard: Shard | None = None, **score_kw: Any):
    """P(yes) of every (query template, video) pair of the retrieval matrix `eval_ssv2_<name>.csv`.

    Our own entailment prompt is applied to the template extracted from VideoCon's wrapped caption.
    Returns (matrix, scores) with scores shaped (queries, videos) like `matrix.match`. `resume_file`: as for
    `velociti_items`.
    """
    matrix = load_retrieval_matrix(root.ssv2_matrix(name))
    videos = [str(root.ssv2_videos / v) for v in matrix.videos]
    first_row = {r.videopath: r.row for r in reversed(matrix.rows)}
    _require_videos([(root.ssv2_videos / v, matrix.path, first_row[v], "videopath") for v in matrix.videos],
                    score_kw.get("num_frames", 8))
    # one request per (video, query): grouped by video, so the packed scorer reuses each video prefix
    requests = [ScoreRequest(v, extract_template(q)) for v in videos for q in matrix.queries]
    scores = _scores(model, processor, requests, resume_file, shard, video_cache=video_cache, **score_kw)
    return matrix, scores.reshape(len(videos), len(matrix.queries)).T.copy()


def qa_answers(model: Any, processor: Any, root: DataRoot, *, limit: int | None = None,
               video_cache: MutableMapping | None = None, resume_file: str | Path | None = None,
               shard: Shard | None = None, **gen_kw: Any) -> pd.DataFrame:
    """Greedy answers to the MSRVTT-QA-format questions, judged offline (`hacalib.scoring.derived.judge_answers`:
    first answer span, exact match, containment).
    With `resume_file`, answers are also kept there per finished video, and a call interrupted by a kill continues
    from it (`hacalib.scoring.answers_file.generate_to_file`)."""
    items = load_msrvtt_qa(root.msrvtt_qa_questions, root.msrvtt_qa_answers, video_root=root.msrvtt_qa_videos)
    items = list(_limit(items, limit))
    _require_videos([(it.video_path, root.msrvtt_qa_questions, it.row, "video_name") for it in items],
                    gen_kw.get("num_frames", 8))
    requests, prompts = qa_inputs(model, items, source=str(root.msrvtt_qa_questions))
    preds = _texts(model, processor, requests, prompts, resume_file, shard, video_cache=video_cache, **gen_kw)
    return judge_answers(pd.DataFrame({
        "question_id": [it.question_id for it in items], "type": [it.type for it in items],
        "question": [it.question for it in items], "answer": [it.answer for it in items], "prediction": preds,
    }))


def correction_answers(model: Any, processor: Any, root: DataRoot, *, split: str = "test", limit: int | None = None,
                       duplicates: str = "error",
                       video_cache: MutableMapping | None = None, resume_file: str | Path | None = None,
                       shard: Shard | None = None, **gen_kw: Any) -> pd.DataFrame:
    """The model's full greedy answer ("Yes" / "No, <correction>") to the entailment prompt of each held-out
    contrast caption, with how much the correction recovers the true caption. `resume_file`: as for `qa_answers`.

    Returns columns misalignment, video, caption, neg_caption, answer, correction and the measures of
    `hacalib.scoring.derived.measure_corrections` (says_no, exact, recovered, overlap_true, overlap_copy).
    """
    rows = heldout_rows(root, split, limit, duplicates)
    requests = [ScoreRequest(r.video_path, r.neg_caption) for r in rows]
    gen_kw.setdefault("max_new_tokens", CORRECTION_MAX_NEW_TOKENS)
    prompt = gen_kw.pop("prompt", "haca")  # the entailment question's wording (not an argument of generation)
    answers = _texts(model, processor, requests, correction_prompts(model, requests, prompt), resume_file, shard,
                     video_cache=video_cache, **gen_kw)
    return measure_corrections(pd.DataFrame({
        "misalignment": [r.misalignment for r in rows], "video": [r.videopath for r in rows],
        "caption": [r.caption for r in rows], "neg_caption": [r.neg_caption for r in rows], "answer": answers,
    }))


@torch.no_grad()
def evaluate_toy_model(
    model_dir: str | Path, world_dir: str | Path, *, split: str = "test", limit: int | None = None, batch_size: int = 32
) -> dict:
    """How well a toy model captions and answers yes/no on held-out toy VideoCon videos (a sanity report).

    Args:
        model_dir: a saved toy model (`hacalib.training.pretrain.pretrain_toy_model` output).
        world_dir: the toy world; its VideoCon rows of `split` are held out from pretraining (other videos).
        limit: use the first N rows.
        batch_size: videos per forward.

    Returns caption_exact (greedy caption equals the true caption, word for word), yes_no_accuracy (P(yes) > 0.5
    for the true caption, < 0.5 for the contrast caption; over both), pairwise_accuracy (P(yes|true) >
    P(yes|contrast)), pyes_std (spread of P(yes): near 0 means collapsed), n_rows, n_videos.
    """
    from ..models import family_of, load_model, split_words

    world = Path(world_dir)
    csv = world / "videocon" / "videocon_llm_entailment.csv"
    rows = [r for r in load_videocon(csv, video_root=world / "videocon" / "videos") if r.split == split][:limit]
    if not rows:
        raise DataError(csv, f"no rows with split {split!r}", key="split")
    model, processor = load_model(model_dir)
    cache: dict = {}
    requests = [ScoreRequest(r.video_path, c) for r in rows for c in (r.caption, r.neg_caption)]
    pyes = torch.from_numpy(p_yes(model, processor, requests, batch_size=batch_size, video_cache=cache))
    p_true, p_neg = pyes[0::2], pyes[1::2]

    truth = {r.video_path: r.caption for r in rows}
    videos = sorted(truth)
    caption_prompt = family_of(model).template.caption_prompt()
    said = generate_texts(model, processor, [ScoreRequest(v, "") for v in videos], [caption_prompt] * len(videos),
                          max_new_tokens=64, batch_size=batch_size, video_cache=cache)
    words = lambda text: [w.lower() for w in split_words(text)]  # noqa: E731
    exact = sum(words(s) == words(truth[v]) for v, s in zip(videos, said))
    return {
        "caption_exact": exact / len(videos),
        "yes_no_accuracy": float(((p_true > 0.5).float().mean() + (p_neg < 0.5).float().mean()) / 2),
        "pairwise_accuracy": float((p_true > p_neg).float().mean()),
        "pyes_std": float(torch.cat([p_true, p_neg]).std()),
        "n_rows": len(rows),
        "n_videos": len(videos),
    }
