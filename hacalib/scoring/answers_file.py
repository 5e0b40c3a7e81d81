"""Resumable generation to a JSON-lines file: answers written per finished video (append + fsync), finished videos
skipped on restart, so a killed QA or correction run continues where it stopped and ends with the same file.

The same design as `.results_file.score_to_file` (P(yes)), with one addition: a generated text depends on more
than its request (the weights, the generation settings, the batch it was decoded in), so the file's first line
records all of that, and a file written for other inputs is refused with an error naming it rather than mixed
with new answers. Layout, one JSON object per line:

    {"format": "hacalib.answers/1", "model": {...}, "tokenizer": {...}, "generation": {...}, "requests": {...},
     "identity": {...}}                                                  what the answers depend on
    {"i": 0, "video": "<video key>", "caption": "<question or caption>", "answer": "<generated text>"}
    ...                                                                  one line per prompt, a video's lines together

May import: torch, `hacalib.errors`, `hacalib.io`, `.requests`, `.generation`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

import torch

from ..errors import DataError
from ..io import atomic_path
from .generation import generation_batches, iter_generate
from .requests import ScoreRequest, group_by_video

FORMAT = "hacalib.answers/1"
ROW_KEYS = ("i", "video", "caption", "answer")
_SAMPLE = 256  # values per parameter tensor in the weights fingerprint


def model_identity(model: torch.nn.Module) -> dict:
    """What identifies the weights that answer: class, parameter count, dtype, device type and a sha256 over every
    parameter's name, shape and a fixed strided sample of its values (cheap at 7B: reading all 14 GB would not be;
    a trained adapter or another base model changes the sampled values of every tensor it touches)."""
    h = hashlib.sha256()
    count = 0
    with torch.no_grad():
        for name, p in model.named_parameters():
            flat = p.detach().reshape(-1)
            count += flat.numel()
            sample = flat[:: max(1, flat.numel() // _SAMPLE)][:_SAMPLE].float().cpu()
            h.update(f"{name}:{tuple(p.shape)}:{p.dtype};".encode())
            h.update(sample.numpy().tobytes())
    first = next(model.parameters())
    return {"class": type(model).__name__, "parameters": count, "dtype": str(first.dtype),
            "device": first.device.type, "weights_sha256": h.hexdigest()}


def answers_header(model: torch.nn.Module, processor: Any, videos: Sequence[ScoreRequest], prompt_texts: Sequence[str],
                   generation: dict, identity: dict | None = None) -> dict:
    """The first line of an answers file: everything the answers depend on, as JSON (compared on resume)."""
    h = hashlib.sha256()
    for r, text in zip(videos, prompt_texts):
        h.update(json.dumps([str(r.key()), r.caption, text]).encode())
        h.update(b"\n")
    tok = processor.tokenizer
    head = {"format": FORMAT, "model": model_identity(model),
            "tokenizer": {"class": type(tok).__name__, "size": len(tok), "pad_token_id": tok.pad_token_id},
            "generation": {**generation, "decoding": "greedy"},
            "requests": {"count": len(videos), "videos": len(group_by_video(videos)), "sha256": h.hexdigest()},
            "identity": identity or {}}
    return json.loads(json.dumps(head, sort_keys=True, default=str))  # as it reads back from the file


def _differences(old: dict, new: dict) -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += [f"{key}.{d}" for d in _differences(a, b)]
        elif a != b:
            out.append(f"{key} ({json.dumps(a)[:60]} in the file, {json.dumps(b)[:60]} now)")
    return out


def _read_done(path: Path, head: dict, videos: Sequence[ScoreRequest]) -> dict[int, str]:
    """Answers in an earlier, possibly interrupted, file written for the same inputs (in file order)."""
    text = path.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # a line torn by the interruption
    lines = text.splitlines()
    if not lines:
        return {}
    try:
        first = json.loads(lines[0])
    except json.JSONDecodeError:
        first = None
    if not isinstance(first, dict) or first.get("format") != FORMAT:
        raise DataError(path, f"first line is not a {FORMAT} header; not an answers file of generate_to_file", row=0)
    if first != head:
        diff = "; ".join(_differences(first, head))
        raise DataError(path, f"written for other inputs: {diff}. Delete the file (or use another one) to answer "
                        "from the start", row=0, key="header")
    done: dict[int, str] = {}
    for r, line in enumerate(lines[1:], start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(path, f"malformed JSON: {exc.msg}", row=r) from exc
        if not isinstance(row, dict) or sorted(row) != sorted(ROW_KEYS) or not isinstance(row["i"], int) \
                or not isinstance(row["answer"], str):
            raise DataError(path, f"expected an object with keys {list(ROW_KEYS)} (i an integer, answer a string)",
                            row=r)
        i = row["i"]
        if not 0 <= i < len(videos) or row["video"] != videos[i].key() or row["caption"] != videos[i].caption:
            raise DataError(path, "row does not match the requests being answered (different inputs?); use a new "
                            "file", row=r, key="i")
        done[i] = row["answer"]
    return done


def resumable_videos(done: dict[int, str], videos: Sequence[ScoreRequest], batch_size: int) -> set:
    """Video keys whose answers can be kept: every prompt answered, and every video sharing a `generate` call with
    it kept too (a call is rerun whole or not at all, so a resumed run decodes the same batches)."""
    keep = {r.key() for g in group_by_video(videos) if all(i in done for i in g) for r in (videos[g[0]],)}
    changed = True
    while changed:
        changed = False
        for idx in generation_batches(videos, batch_size):
            keys = {videos[i].key() for i in idx}
            if keys & keep and not keys <= keep:
                keep -= keys
                changed = True
    return keep


def _line(i: int, request: ScoreRequest, answer: str) -> str:
    return json.dumps({"i": i, "video": request.key(), "caption": request.caption, "answer": answer}) + "\n"


def _header(model, processor, videos, prompt_texts, settings: dict, identity: dict | None) -> dict:
    if len(videos) != len(prompt_texts):
        raise ValueError(f"{len(videos)} videos for {len(prompt_texts)} prompts")
    for i, r in enumerate(videos):
        if not isinstance(r.key(), str):
            raise ValueError(f"request {i} has frames and no video_id: generate_to_file needs a stable key to resume")
    return answers_header(model, processor, videos, prompt_texts, settings, identity)


def read_answers(model: torch.nn.Module, processor: Any, videos: Sequence[ScoreRequest], prompt_texts: Sequence[str],
                 out_file: str | Path, *, max_new_tokens: int = 16, batch_size: int = 16, num_frames: int = 8,
                 identity: dict | None = None, **_: Any) -> dict[int, str]:
    """The answers an answers file of `generate_to_file` (same arguments) holds (prompt index -> text), its header
    and every row checked against these inputs as a resumed `generate_to_file` would check them; nothing is
    generated or written."""
    settings = {"max_new_tokens": max_new_tokens, "batch_size": batch_size, "num_frames": num_frames}
    return _read_done(Path(out_file), _header(model, processor, videos, prompt_texts, settings, identity), videos)


def generate_to_file(
    model: torch.nn.Module,
    processor: Any,
    videos: Sequence[ScoreRequest],
    prompt_texts: Sequence[str],
    out_file: str | Path,
    *,
    max_new_tokens: int = 16,
    batch_size: int = 16,
    num_frames: int = 8,
    identity: dict | None = None,
    **kwargs: Any,
) -> list[str]:
    """Greedy answers of `generate_texts`, also written to `out_file`, resumable per video.

    Each video's lines are appended and fsync'ed as soon as its last prompt is answered. Started again on the
    same file, it checks the header (model weights, tokenizer, generation settings, the requests and prompts,
    `identity`) and every row against the inputs (a mismatch is a DataError naming the file), keeps the complete
    videos, drops a torn line and partly answered videos, and answers only the rest, in the same batches as an
    uninterrupted run, so the file ends byte-identical to one. Every request needs a stable key (a path or a
    `video_id`).

    Args:
        videos, prompt_texts, max_new_tokens, batch_size, num_frames: as `generate_texts`.
        out_file: the JSON-lines answers file (created with its folder).
        identity: anything else the caller wants the file tied to (e.g. a run's cache key), compared on resume.
        kwargs: `video_cache`, `device` (as `generate_texts`; they change no answer, so they are not recorded).
    Returns the answers in request order.
    """
    path = Path(out_file)
    settings = {"max_new_tokens": max_new_tokens, "batch_size": batch_size, "num_frames": num_frames}
    head = _header(model, processor, videos, prompt_texts, settings, identity)
    done = _read_done(path, head, videos) if path.is_file() else {}
    keep = resumable_videos(done, videos, batch_size)
    kept = {i: a for i, a in done.items() if videos[i].key() in keep}
    # rewrite what is kept (drops a torn line or a partial video), atomically, then append
    with atomic_path(path) as tmp:
        with tmp.open("w", encoding="utf-8") as f:
            f.write(json.dumps(head, sort_keys=True) + "\n")
            f.write("".join(_line(i, videos[i], a) for i, a in kept.items()))  # file order = uninterrupted order
    answers: list[str | None] = [None] * len(videos)
    for i, a in kept.items():
        answers[i] = a
    with path.open("a", encoding="utf-8") as f:
        for _, idx, texts in iter_generate(model, processor, videos, prompt_texts, skip=keep, **settings, **kwargs):
            f.write("".join(_line(i, videos[i], t) for i, t in zip(idx, texts)))
            f.flush()
            os.fsync(f.fileno())
            for i, t in zip(idx, texts):
                answers[i] = t
    return answers  # type: ignore[return-value]
