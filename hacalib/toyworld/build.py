"""Build the whole toy world under a data root, in the real benchmark layouts and formats.

    build_world("data/toy", size="default", seed=0)

writes videocon/, velociti/, ssv2/, msrvtt_qa/, pretrain/, scenes.jsonl (the ground-truth scene of every
video, for tests and failure analysis) and, last, toyworld.json (the manifest). Every file is written
atomically; a complete world with the same seed, size and configuration is not rebuilt.

May import: numpy, its own package's modules, `hacalib.config`, `hacalib.data`, `hacalib.errors`, `hacalib.io`.
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..config import ToyWorldConfig
from ..data.video import sample_frame_indices, write_mp4
from ..io import read_json, write_json, write_text
from .benchmarks import SceneSource, make_msrvtt_qa, make_pretrain, make_ssv2, make_velociti, make_videocon
from .grammar import vocabulary
from .render import render
from .scene import Scene, scene_from_dict, scene_to_dict

# Bump when the world's content changes for the same seed (a rebuild is then forced).
WORLD_VERSION = "2"
MANIFEST = "toyworld.json"
SCENES = "scenes.jsonl"


@dataclass(frozen=True)
class WorldSize:
    """How many videos each part gets."""

    pretrain: int
    videocon_train: int
    videocon_test: int
    velociti: int
    ssv2_per_template: int  # retrieval pool = 9 templates x this videos; each template is a query
    msrvtt_qa: int


SIZES = {
    "smoke": WorldSize(pretrain=42, videocon_train=35, videocon_test=14, velociti=18, ssv2_per_template=3, msrvtt_qa=12),
    "default": WorldSize(pretrain=4000, videocon_train=1400, videocon_test=700, velociti=300, ssv2_per_template=30,
                         msrvtt_qa=300),
}

# One random stream per part, so changing one part's size leaves the others' content unchanged.
_PARTS = ("videocon", "velociti", "ssv2", "msrvtt_qa", "pretrain")


def _csv(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _is_complete(root: Path, expected: dict) -> dict | None:
    path = root / MANIFEST
    if not path.is_file():
        return None
    manifest = read_json(path)
    same = all(manifest.get(k) == expected[k] for k in ("version", "seed", "size", "config"))
    files_there = all((root / f).is_file() for f in manifest.get("files", {}))
    return manifest if same and files_there else None


def build_world(
    out_dir: str | Path, size: str = "smoke", seed: int = 0, config: ToyWorldConfig | None = None, force: bool = False
) -> dict:
    """Write the toy world under `out_dir` (a data root) and return its manifest.

    Args:
        out_dir: the data root to write (created if needed).
        size: "smoke" (tests: ~120 videos, seconds) or "default" (reproduce: ~6,400 videos).
        seed: the world seed; the same seed, size and config give the same files.
        config: canvas, frame counts and fps (`ToyWorldConfig`); its own size/seed fields are ignored.
        force: rebuild even if a complete world with the same parameters is already there.
    """
    if size not in SIZES:
        raise ValueError(f"unknown world size {size!r}; choose one of {sorted(SIZES)}")
    cfg = replace(config or ToyWorldConfig(), size=size, seed=seed)
    root = Path(out_dir)
    n = SIZES[size]
    expected = {"version": WORLD_VERSION, "seed": seed, "size": size,
                "config": {**asdict(cfg), "parts": asdict(n)}}
    if not force and (done := _is_complete(root, expected)) is not None:
        return done

    t0 = time.perf_counter()
    sampled = [int(i) for i in sample_frame_indices(cfg.num_frames, cfg.model_frames)]
    src = SceneSource(cfg.canvas, cfg.num_frames, sampled)
    rngs = {p: np.random.default_rng([seed, k]) for k, p in enumerate(_PARTS)}

    vc_rows, vc_videos = make_videocon(src, rngs["videocon"], n.videocon_train, n.videocon_test)
    vel_tests, vel_videos = make_velociti(src, rngs["velociti"], n.velociti)
    ssv2_rows, ssv2_videos = make_ssv2(src, rngs["ssv2"], n.ssv2_per_template)
    qa_q, qa_a, qa_videos = make_msrvtt_qa(src, rngs["msrvtt_qa"], n.msrvtt_qa)
    pre_records, pre_videos = make_pretrain(src, rngs["pretrain"], n.pretrain)

    files: dict[str, int] = {}  # path -> rows / items, for the manifest
    text_files = {
        "videocon/videocon_llm_entailment.csv": (
            _csv(vc_rows, ["videopath", "source", "caption", "neg_caption", "youtube_key", "split", "misalignment"]),
            len(vc_rows)),
        "ssv2/eval_ssv2_toy.csv": (_csv(ssv2_rows, ["videopath", "caption", "match"]), len(ssv2_rows)),
        "msrvtt_qa/test_q.json": (json.dumps(qa_q, indent=1) + "\n", len(qa_q)),
        "msrvtt_qa/test_a.json": (json.dumps(qa_a, indent=1) + "\n", len(qa_a)),
        "pretrain/pretrain.jsonl": ("".join(json.dumps(r, sort_keys=True) + "\n" for r in pre_records),
                                    len(pre_records)),
    }
    for test, items in vel_tests.items():
        text_files[f"velociti/{test}.json"] = (json.dumps(items, indent=1, sort_keys=True) + "\n",
                                               sum(len(v) for v in items.values()))

    all_videos: dict[str, tuple[str, Scene]] = {}
    for part, vids in (("videocon", vc_videos), ("velociti", vel_videos), ("ssv2", ssv2_videos),
                       ("msrvtt_qa", qa_videos), ("pretrain", pre_videos)):
        for path, scene in vids.items():
            all_videos[path] = (part, scene)
    for path, (_, scene) in all_videos.items():
        write_mp4(root / path, render(scene), fps=cfg.fps)
    text_files[SCENES] = ("".join(json.dumps({"video": p, "part": part, "scene": scene_to_dict(s)}, sort_keys=True)
                                  + "\n" for p, (part, s) in all_videos.items()), len(all_videos))
    for rel, (text, count) in text_files.items():
        write_text(root / rel, text)
        files[rel] = count

    video_counts = {p: sum(1 for part, _ in all_videos.values() if part == p) for p in _PARTS}
    total_bytes = sum((root / p).stat().st_size for p in list(files) + list(all_videos))
    manifest = {
        **expected,
        "counts": {"files": files, "videos": video_counts, "videos_total": len(all_videos)},
        "files": {rel: files[rel] for rel in sorted(files)},
        "sampled_frames": sampled,
        "vocabulary": vocabulary(),
        "bytes_total": total_bytes,
        "generation_seconds": round(time.perf_counter() - t0, 2),
    }
    write_json(root / MANIFEST, manifest)
    return manifest


def load_scenes(data_root: str | Path) -> dict[str, tuple[str, Scene]]:
    """The ground-truth scenes of a built world: {video path under the data root: (part, Scene)}."""
    from ..errors import DataError

    path = Path(data_root) / SCENES
    if not path.is_file():
        raise DataError(path, "file not found (not a toy world, or an incomplete build)")
    out = {}
    for row, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            rec = json.loads(line)
            out[rec["video"]] = (rec["part"], scene_from_dict(rec["scene"]))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataError(path, f"malformed scene record: {exc}", row=row) from exc
    return out
