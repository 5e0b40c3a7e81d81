"""One evaluation across several processes: each scores a share of the videos into its own resumable file, then the
shares are read back in a fixed order, so the result equals a one-process run's.

    shard = Shard(rank=state.process_index, count=state.num_processes, wait=state.wait_for_everyone)
    scores = sharded_scores(model, processor, requests, "progress/velociti.csv", shard, batch_size=16)

A share is a run of whole videos cut from the one-process plan of forwards (or `generate` calls) only between two
forwards that no video spans (`split_forwards`). A process scoring its share then forms exactly the batches the
one-process run forms for those videos, so the numbers are the same float operations on the same shapes: byte-
identical per-item files where kernels are deterministic for a shape (CPU; on a GPU the same cuBLAS/SDPA kernels).
Only a small evaluation with fewer such cuts than processes is cut between videos inside a forward: those forwards
then pad and reduce over other rows than in one process, which moves a float32 result by rounding (measured on the
smoke world: P(yes) by at most 2.4e-7, a summed log-likelihood of -25..-97 by 1.1e-5, i.e. 1.5 ulp) and could flip
a greedy token only where two logits lie within that rounding (docs/scale.md).

Each process writes `<file stem>.shard<r>of<n><suffix>` through the one-process machinery (`score_to_file`,
`generate_to_file`: per finished video, resumable); after `wait` (every process done) every process reads all
shares back, checked row by row against the requests, and returns the full result in request order.

May import: numpy, `hacalib.errors`, `.requests`, `.pyes`, `.loglik`, `.generation`, `.results_file`, `.answers_file`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import DataError
from .answers_file import generate_to_file, read_answers
from .generation import generation_batches
from .loglik import caption_loglik, loglik_forwards
from .pyes import pyes_forwards
from .requests import ScoreRequest
from .results_file import read_scores, score_to_file, write_scores


def _no_wait() -> None:
    return None


@dataclass(frozen=True)
class Shard:
    """This process's place among `count` processes sharing one evaluation.

    rank: this process's index (0 .. count-1).
    count: the number of processes.
    wait: returns once every process has called it (accelerate's `PartialState.wait_for_everyone`); shares are read
        back only after it, so every file is complete.
    """

    rank: int
    count: int
    wait: Callable[[], None] = _no_wait

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.rank < self.count:
            raise ValueError(f"bad shard: rank {self.rank} of {self.count} processes")

    def path(self, file: str | Path, rank: int | None = None) -> Path:
        """The share file of process `rank` (default this one) beside `file`."""
        file = Path(file)
        r = self.rank if rank is None else rank
        return file.with_name(f"{file.stem}.shard{r}of{self.count}{file.suffix}")


def split_forwards(forwards: Sequence[Sequence[int]], requests: Sequence[ScoreRequest], count: int) -> list[list[int]]:
    """Request indices (ascending) of each of `count` processes, the shares in plan order and as near equal in
    requests as the cuts allow.

    Cuts fall between consecutive forwards of the one-process plan where no video has requests on both sides, so
    every process forms the one-process batches. Where the plan has fewer such cuts than processes (a small
    evaluation: e.g. 12 questions in one `generate` call), shares are cut between videos instead, so that every
    process gets work: the forwards at the cuts then hold other videos than in one process (see the module's note
    on what that changes)."""
    first: dict[Any, int] = {}
    last: dict[Any, int] = {}
    for f, idx in enumerate(forwards):
        for i in idx:
            key = requests[i].key()
            first.setdefault(key, f)
            last[key] = f
    # running (after forward f): videos with requests up to f and after it; a cut after f is clean when it is 0
    delta = [0] * (len(forwards) + 1)
    for key, f0 in first.items():
        delta[f0] += 1
        delta[last[key]] -= 1
    blocks: list[list[int]] = [[]]
    running = 0
    for f, idx in enumerate(forwards):
        blocks[-1].extend(idx)
        running += delta[f]
        if running == 0 and f < len(forwards) - 1:
            blocks.append([])
    blocks = [b for b in blocks if b]
    if len(blocks) < count:
        by_video: dict[Any, list[int]] = {}
        for idx in forwards:
            for i in idx:
                by_video.setdefault(requests[i].key(), []).append(i)
        blocks = list(by_video.values())
    cum = [0]
    for b in blocks:
        cum.append(cum[-1] + len(b))
    cuts = [0]
    for k in range(1, count):
        target = cum[-1] * k / count
        # at least one block for each share still to come, when there are enough blocks
        lo, hi = (cuts[-1] + 1, len(blocks) - (count - k)) if len(blocks) >= count else (cuts[-1], len(blocks))
        cuts.append(min(range(lo, hi + 1), key=lambda j: (abs(cum[j] - target), j)))
    cuts.append(len(blocks))
    return [sorted(i for b in blocks[cuts[k]:cuts[k + 1]] for i in b) for k in range(count)]


def _subset(requests: Sequence, idx: Sequence[int]) -> list:
    return [requests[i] for i in idx]


def _incomplete(path: Path, have: int, want: int, shard: Shard, rank: int) -> DataError:
    return DataError(path, f"share {rank} of {shard.count} processes holds {have} of its {want} results after every "
                     "process finished (a process failed?); run the evaluation again to complete it")


def _merged_scores(requests: Sequence[ScoreRequest], shares: list[list[int]], file: str | Path,
                   shard: Shard) -> np.ndarray:
    """Every share's numbers read back (each checked against its requests) into request order; a share that is
    missing or short is an error naming its file."""
    out = np.full(len(requests), np.nan, dtype=np.float32)
    for r, idx in enumerate(shares):
        if not idx:
            continue
        path = shard.path(file, r)
        done = read_scores(path, _subset(requests, idx)) if path.is_file() else {}
        if len(done) != len(idx):
            raise _incomplete(path, len(done), len(idx), shard, r)
        for local, value in done.items():
            out[idx[local]] = value
    return out


def sharded_scores(model: Any, processor: Any, requests: Sequence[ScoreRequest], resume_file: str | Path,
                   shard: Shard, **score_kw: Any) -> np.ndarray:
    """P(yes) of every request (as `score_to_file`), this process scoring its share (`split_forwards` of the
    `iter_pyes` plan) into its own resumable file; the full result in request order after every share is done."""
    shares = split_forwards(pyes_forwards(requests, **score_kw), requests, shard.count)
    mine = shares[shard.rank]
    if mine:
        score_to_file(model, processor, _subset(requests, mine), shard.path(resume_file), **score_kw)
    shard.wait()
    return _merged_scores(requests, shares, resume_file, shard)


def sharded_loglik(model: Any, processor: Any, requests: Sequence[ScoreRequest], out_file: str | Path, shard: Shard,
                   **kw: Any) -> np.ndarray:
    """Caption log-likelihoods (as `caption_loglik`), this process computing its share of the `caption_loglik` plan
    and writing it whole when done (a finished share is kept on a rerun; an unfinished one is computed again)."""
    shares = split_forwards(loglik_forwards(requests, **kw), requests, shard.count)
    mine, path = shares[shard.rank], shard.path(out_file)
    sub = _subset(requests, mine)
    if mine and not (path.is_file() and len(read_scores(path, sub)) == len(sub)):
        write_scores(path, sub, caption_loglik(model, processor, sub, **kw))
    shard.wait()
    return _merged_scores(requests, shares, out_file, shard)


def sharded_texts(model: Any, processor: Any, requests: Sequence[ScoreRequest], prompts: Sequence[str],
                  resume_file: str | Path, shard: Shard, **gen_kw: Any) -> list[str]:
    """Greedy answers (as `generate_to_file`), this process answering its share of the `generation_batches` plan into
    its own resumable answers file; the full list in request order after every share is done."""
    shares = split_forwards(generation_batches(requests, gen_kw.get("batch_size", 16)), requests, shard.count)
    mine = shares[shard.rank]
    if mine:
        generate_to_file(model, processor, _subset(requests, mine), _subset(prompts, mine), shard.path(resume_file),
                         **gen_kw)
    shard.wait()
    out: list[str | None] = [None] * len(requests)
    for r, idx in enumerate(shares):
        if not idx:
            continue
        path = shard.path(resume_file, r)
        done = read_answers(model, processor, _subset(requests, idx), _subset(prompts, idx), path, **gen_kw) \
            if path.is_file() else {}
        if len(done) != len(idx):
            raise _incomplete(path, len(done), len(idx), shard, r)
        for local, text in done.items():
            out[idx[local]] = text
    return out  # type: ignore[return-value]
