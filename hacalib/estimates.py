"""What a reproduction will cost before it runs: item counts read from the annotation files (no video decoded, no
toy world rendered) and time estimates from measured throughputs, for `haca reproduce --plan` (`hacalib.plan`).

`SPEEDS` is the one table of throughputs the estimates use, per preset and model family (`speeds_for`), each with
the device it was measured on and where the project records it (README "Running on the real data" for the 7B shape;
for the toy preset the bench/ scripts run on the reference CPU with the shipped toy bases, and the fine-tuning times
and the correction rate of the last toy reproductions). Update it when bench/ is re-run. The cost model: scoring a
video's c captions takes a + b*c seconds, a line through the two measured `pyes` points (pairs/s at two caption
counts per video: 1 = one full forward per pair, and 32 packed, at 7B; 2 and 32 packed at the evaluation's batch for
the toy); a generated answer costs `1 / generate` (a toy correction `1 / correct`: a caption, not one word), or,
where generation was never measured, one full forward a + b (its prefill; the decoding is then not counted: a lower
bound); a fine-tuning step costs `train_video` per video in it (the objective's own where it was measured).

May import: `hacalib.experiment`, `hacalib.data`, `hacalib.toyworld`, `hacalib.errors`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import DataError


@dataclass(frozen=True)
class Speed:
    name: str  # what the estimate calls it
    value: float
    unit: str
    device: str
    source: str
    per_video: int = 0  # pyes: captions per video it was measured at
    objective: str = ""  # train_video: the objective it was measured on ("": any)

    def describe(self) -> str:
        return f"{self.name} = {self.value:g} {self.unit}; {self.device}; {self.source}"


def _toy_speeds(slug: str, *, pyes: tuple[float, float], generate: float, correct: float, train: dict[str, float],
                pretrain: float) -> tuple[Speed, ...]:
    """One toy family's speeds, measured on the reference CPU with its shipped base 0 (`hacalib/bases/toy-<slug>-
    seed0`): P(yes) at 2 and 32 captions per video, QA answers, fine-tuning seconds per objective (200 steps of 8
    videos), pretraining seconds (4,800 steps of 8; the idle seed's where another job shared the machine); and
    corrections (seconds per evaluated model in a cold reproduction: a correction is a generated caption)."""
    base, day = f"hacalib/bases/toy-{slug}-seed0", "2026-12-04, idle machine"
    return (
        *(Speed("pyes", rate, f"pairs/s at {c} captions per video (packed, 16 videos per forward)", REF_CPU,
                f"bench/scoring.py --model {base} --videos 16 --captions {c} --packed-batch 16, {day}", c)
          for c, rate in zip((2, 32), pyes)),
        Speed("generate", generate, "questions/s (the toy world's 1,200 QA questions on 300 videos, 16 per call, "
              "one-word answers)", REF_CPU, f"bench/generation.py --model {base} --data-root <toy world>, {day}"),
        Speed("correct", correct, f"correction prompts/s (the toy world's 700 held-out rows: {700 / correct:.1f} s a "
              "model, loading it included)", REF_CPU, "median over the 21 evaluated models of the cold toy "
              "reproduction at ea30feb (time between consecutive per-item files under cache/), 2026-12-04"),
        *(Speed("train_video", secs / 200 / 8, f"s per video per step ({objective}: {secs:g} s a run)", REF_CPU,
                f"figures/02_runs.md of the toy reproduction ({slug}, base 0, seed 0)", objective=objective)
          for objective, secs in train.items()),
        Speed("pretrain_video", pretrain / 4800 / 8, "s per video per pretraining step", REF_CPU,
              f"hacalib/bases/toy-{slug}-seed*/pretrain.json (train_seconds {pretrain:g} for 4,800 steps of 8)"),
    )


H200 = "NVIDIA H200, Video-LLaVA-7B shape with random weights, bf16"
REF_CPU = "Intel Xeon (AVX-512), 2 torch threads, the reference 2-core machine"
SPEEDS: dict[str, tuple[Speed, ...]] = {
    "videollava-7b": (
        Speed("pyes", 13.0, "pairs/s at 1 caption per video (one full forward per pair, batch 1)", H200,
              "README 'Running on the real data' (bench/scoring.py --shape 7b)", 1),
        Speed("pyes", 314.7, "pairs/s at 32 captions per video (packed, 1 video per forward)", H200 +
              ", torch 2.11 / transformers 5.17", "README 'Running on the real data', re-measured December 2026 "
              "(bench/scoring.py --shape 7b; the low end of 314.7-344.5)", 32),
        Speed("train_video", 0.40, "s per video per optimizer micro-step (packed, 3 HACA-mask targets)",
              H200 + ", torch 2.11 / transformers 5.17",
              "README 'Running on the real data' (bench/train_loop.py --shape 7b --batch 1: 0.40 s a step)"),
    ),
    "toy": _toy_speeds("videollava", pyes=(587.8, 2740.3), generate=426.7, correct=111.1,
                       train={"entail": 20.3, "haca": 16.9, "haca_mask": 24.3}, pretrain=512.6),
    "toy-videochat2": _toy_speeds("videochat2", pyes=(993.6, 2787.6), generate=539.9, correct=127.3,
                                  train={"entail": 15.4, "haca": 12.4, "haca_mask": 19.2}, pretrain=530.1),
}
NOTES = {
    "videollava-7b": ["QA and corrections: bench/generation.py --shape 7b has not run on a GPU yet, so each answer "
                      "is costed as one full forward (its prefill) and decoding is left out: read it as a lower bound.",
                      "Training: every objective is costed at the measured haca_mask step (3 targets per video); "
                      "entail and haca pack 2 targets per video, a little less."],
    "toy": ["The P(yes), QA and training rates time the model only: decoding each video (once per notebook and "
            "family), loading models and starting notebook kernels come on top (README gives the measured time of "
            "the whole toy reproduction)."],
}


def speeds_key(preset: str, family: str) -> tuple[str, bool]:
    """(the SPEEDS entry a preset's family is estimated from, whether it was measured on that family)."""
    key = "toy" if preset == "toy" else "videollava-7b"
    own = key if family == "video_llava" else f"{key}-{family}"
    return (own, True) if own in SPEEDS else (key, False)


def speeds_for(preset: str, family: str = "video_llava") -> tuple[Speed, ...]:
    return SPEEDS[speeds_key(preset, family)[0]]


def _speed(speeds: tuple[Speed, ...], name: str, objective: str = "") -> float | None:
    """The measured value of `name` (for `objective` where one was measured on it, else the generic one)."""
    found = [s for s in speeds if s.name == name and s.value > 0 and s.objective in (objective, "")]
    return max(found, key=lambda s: s.objective == objective).value if found else None


def scoring_cost(speeds: tuple[Speed, ...]) -> tuple[float, float] | None:
    """(seconds per video, seconds per caption) of P(yes) scoring: the line through the two measured points."""
    points = sorted((s.per_video, s.value) for s in speeds if s.name == "pyes" and s.value > 0)
    if len(points) < 2 or points[0][0] == points[-1][0]:
        return None
    (c1, r1), (c2, r2) = points[0], points[-1]
    per_caption = max(0.0, (c2 / r2 - c1 / r1) / (c2 - c1))
    return max(0.0, c1 / r1 - per_caption * c1), per_caption


@dataclass
class Count:
    """What one evaluated model is asked on one benchmark. None: not known without the files."""

    videos: int | None = None
    captions: int | None = None  # P(yes) pairs, log-likelihood captions, or prompts to answer
    what: str = "pairs"
    note: str = ""
    bound: bool = False  # `captions` is an upper bound (toy world not built)
    rows: int | None = None  # held-out VideoCon rows (videocon)

    def describe(self) -> str:
        if self.captions is None:
            items = "unknown"
        else:
            items = f"{'<= ' if self.bound else ''}{self.captions:,} {self.what}"
        videos = "unknown" if self.videos is None else f"{self.videos:,}"
        return f"{items} on {videos} videos" + (f" ({self.note})" if self.note else "")


def estimate_eval(speeds: tuple[Speed, ...], benchmark: str, count: Count | None, status: str) -> float | None:
    """Seconds to evaluate one model on `benchmark` (0 when cached; None when it cannot be estimated)."""
    if status == "cached":
        return 0.0
    cost, gen = scoring_cost(speeds), _speed(speeds, "generate")
    if count is None or count.captions is None or cost is None:
        return None
    per_video, per_caption = cost
    if benchmark in ("qa", "corrections"):  # unmeasured generation: one full forward (the prefill) per answer
        rate = (_speed(speeds, "correct") if benchmark == "corrections" else None) or gen
        return count.captions / rate if rate else count.captions * (per_video + per_caption)
    if count.videos is None:
        return None
    return count.videos * per_video + count.captions * per_caption


def estimate_train(speeds: tuple[Speed, ...], exp: Any, objective: str, status: str) -> float | None:
    """Seconds of one fine-tuning run (or, objective 'pretrain', one toy base model) still to train."""
    if status == "cached" or status.startswith(("shipped", "hub model", "local")):
        return 0.0
    cfg = exp.config
    if objective == "pretrain":
        per_video = _speed(speeds, "pretrain_video")
        if per_video is None or cfg.pretrain is None or not status.startswith("to pretrain"):
            return None
        return cfg.pretrain.steps * cfg.pretrain.batch_size * per_video
    per_video = _speed(speeds, "train_video", objective)
    if per_video is None:
        return None
    ft = cfg.finetune
    return ft.max_steps * ft.batch_size * ft.grad_accum * per_video


def benchmark_counts(exp: Any) -> tuple[dict[str, Count], str, bool]:
    """(benchmark -> Count, a line on the data root, whether the data is there) for an `Experiment`, read from the
    annotation files (the toy world's preset sizes when it is not built yet)."""
    from .data.layout import DataRoot

    path = exp.root_path
    if exp.preset == "toy":
        from .toyworld.build import MANIFEST, SIZES

        manifest = path / MANIFEST
        built = manifest.is_file() and "status" not in _json(manifest)
        if not built:
            return _toy_sizes(exp, SIZES), f"toy world {path}: not built yet (notebook 01 builds it); counts from " \
                "the preset's world size", False
    elif not path.is_dir():
        return {}, f"data root {path} does not exist", False
    root = DataRoot(path)
    counts = {name: _count(fn, exp, root) for name, fn in _COUNTERS.items()}
    held = counts["videocon"]  # corrections and the log-likelihood readout use the same held-out rows
    counts["corrections"] = Count(held.videos, held.rows, "prompts", held.note)
    counts["videocon_loglik"] = Count(held.videos, None if held.rows is None else 4 * held.rows, "captions",
                                      held.note)
    counts.update(_readouts(counts))
    return counts, _videos_line(exp, root), True


def _readouts(counts: dict[str, Count]) -> dict[str, Count]:
    """The perception readouts' counts from their benchmarks': VELOCITI's two captions on two videos (twice its P(yes)
    pairs), every retrieval (query, video) pair once."""
    vel, ssv2 = counts["velociti"], counts["ssv2"]
    return {"velociti_loglik": Count(vel.videos, None if vel.captions is None else 2 * vel.captions, "captions",
                                     vel.note, vel.bound),
            "ssv2_loglik": Count(ssv2.videos, ssv2.captions, "captions", ssv2.note, ssv2.bound)}


def _videos_line(exp: Any, root: Any) -> str:
    """Which benchmarks' video folders are there (a plan counts items from the annotation files only)."""
    present = root.check()
    folders = [k for k in present if k.endswith("/videos") and not k.startswith("pretrain")]
    missing = [k for k in folders if not present[k]]
    where = "toy world" if exp.preset == "toy" else "data root"
    return f"{where} {root.path}: video folders " + (f"missing: {', '.join(missing)} (evaluations need them)"
                                                      if missing else "present for every benchmark")


def _json(path) -> Any:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"status": "unreadable"}


def _toy_sizes(exp: Any, sizes: dict) -> dict[str, Count]:
    from .experiment import world_size
    from .toyworld.benchmarks import SSV2_TEMPLATES, make_msrvtt_qa
    from .toyworld.build import velociti_items

    n = sizes[world_size(exp.smoke)]
    cfg = exp.config
    held = n.videocon_test if cfg.videocon_heldout is None else min(cfg.videocon_heldout, n.videocon_test)
    per_video = make_msrvtt_qa.__defaults__[0]  # questions per toy QA video (at most)
    qa = n.msrvtt_qa * per_video if cfg.qa_questions is None else min(cfg.qa_questions, n.msrvtt_qa * per_video)
    pool = n.ssv2_per_template * len(SSV2_TEMPLATES)
    limit = cfg.velociti_per_test
    per_test = velociti_items(world_size(exp.smoke), exp.world_seed).values()  # drawn, not rendered
    items = sum(k if limit is None else min(k, limit) for k in per_test)
    counts = {
        "velociti": Count(n.velociti, 2 * items),
        "videocon": Count(held, 2 * held, rows=held), "corrections": Count(held, held, "prompts"),
        "videocon_loglik": Count(held, 4 * held, "captions"),
        "ssv2": Count(pool, pool * len(SSV2_TEMPLATES)),
        "qa": Count(n.msrvtt_qa if cfg.qa_questions is None else None, qa, "questions", bound=True),
    }
    return {**counts, **_readouts(counts)}


def _count(fn, exp: Any, root: Any) -> Count:
    try:
        return fn(exp, root)
    except DataError as exc:
        return Count(note=f"cannot run: {exc}")
    except FileNotFoundError as exc:
        return Count(note=f"missing: {exc.filename or exc}")


def _velociti(exp: Any, root: Any) -> Count:
    from .data.velociti import TESTS, load_velociti

    missing = [t for t in TESTS if not root.velociti_test(t).is_file()]
    if missing:
        return Count(note=f"missing {', '.join(f'{t}.json' for t in missing)} under {root.velociti_dir}")
    limit = exp.eval_limit("velociti")
    items = []
    for test in TESTS:
        its = load_velociti(root.velociti_dir, tests=[test])
        items += its if limit is None else its[:limit]
    return Count(len({it.video_id for it in items}), 2 * len(items))


def _videocon(exp: Any, root: Any) -> Count:
    from .data import load_videocon

    if not root.videocon_csv.is_file():
        return Count(note=f"missing {root.videocon_csv}")
    # as the held-out evaluation loads it (the preset's duplicates choice)
    rows = [r for r in load_videocon(root.videocon_csv, duplicates=exp.config.duplicates) if r.split == "test"]
    limit = exp.eval_limit("videocon")
    rows = rows if limit is None else rows[:limit]
    return Count(len({r.videopath for r in rows}), 2 * len(rows), note=f"{len(rows):,} held-out rows", rows=len(rows))


def _ssv2(exp: Any, root: Any) -> Count:
    from .data import load_retrieval_matrix

    names = root.ssv2_names()
    if not names:
        return Count(note=f"no eval_ssv2_*.csv under {root.ssv2_dir}")
    shapes = {n: load_retrieval_matrix(root.ssv2_matrix(n)).shape for n in names}
    return Count(sum(v for _, v in shapes.values()), sum(q * v for q, v in shapes.values()),
                 note=", ".join(f"{n} {q}x{v}" for n, (q, v) in shapes.items()))


def _qa(exp: Any, root: Any) -> Count:
    from .data import load_msrvtt_qa

    for p in (root.msrvtt_qa_questions, root.msrvtt_qa_answers):
        if not p.is_file():
            return Count(what="questions", note=f"missing {p}")
    items = load_msrvtt_qa(root.msrvtt_qa_questions, root.msrvtt_qa_answers)
    limit = exp.eval_limit("qa")
    items = items if limit is None else items[:limit]
    return Count(len({it.video_name for it in items}), len(items), "questions")


_COUNTERS = {"velociti": _velociti, "videocon": _videocon, "ssv2": _ssv2, "qa": _qa}
