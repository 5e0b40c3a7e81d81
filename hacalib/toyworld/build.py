"""Build the whole toy world under a data root, in the real benchmark layouts and formats.

    build_world("data/toy", size="default", seed=0)

writes videocon/, velociti/, ssv2/, msrvtt_qa/, pretrain/, scenes.jsonl (the ground-truth scene of every
video, for tests and failure analysis) and, last, toyworld.json (the manifest). Every file is written
atomically; a complete world with the same seed, size and configuration is not rebuilt.

Safe over an existing folder: before the first file changes, the manifest is replaced by a "building" one that
lists every file a world of ours wrote there (so an interrupted build is never mistaken for a complete one, and
a later build knows which files are ours); the full manifest goes in last. A world is complete only when every
file it lists has the recorded size and sha256 (checked in full once per process, then by size and mtime).
A folder that holds anything but a toy world of ours (e.g. a real data root) is refused unless `force=True`,
which writes the world beside those files and still never deletes a file we did not write.

May import: numpy, its own package's modules, `hacalib.config`, `hacalib.data`, `hacalib.errors`, `hacalib.io`.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..config import ToyWorldConfig
from ..data.video import sample_frame_indices, write_mp4
from ..errors import DataError, UsageError
from ..io import read_json, sha256_file, write_json, write_text
from .benchmarks import SceneSource, make_msrvtt_qa, make_pretrain, make_ssv2, make_velociti, make_videocon
from .grammar import vocabulary
from .render import render
from .scene import Scene, scene_from_dict, scene_to_dict

# Bump when the world's content changes for the same seed (a rebuild is then forced).
WORLD_VERSION = "3"  # 3: hallucination contrasts replace a clause, counting contrasts a count the text allows
# Bump when the pretraining part's content changes for the same seed: the toy base models' cache key holds this, not
# WORLD_VERSION, so a change to the evaluation parts alone keeps the bases (their pretraining data is the same bytes).
PRETRAIN_VERSION = "2"
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


def checksums(root: Path, rels) -> dict[str, list]:
    """{relative path: [bytes, sha256]} of the given files under `root`."""
    return {rel: [(root / rel).stat().st_size, sha256_file(root / rel)] for rel in sorted(rels)}


# Worlds verified in full by this process: (root, manifest mtime) -> {rel: (size, mtime_ns)} seen then.
_VERIFIED: dict[tuple[str, int], dict[str, tuple[int, int]]] = {}


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def verify_world(root: Path, manifest: dict) -> list[str]:
    """The files of a world that are missing or differ from the manifest's size and sha256 ([] when whole)."""
    sums = manifest.get("checksums")
    if not isinstance(sums, dict) or not sums:
        return ["(manifest without checksums: written by an older hacalib)"]
    key = (str(root.resolve()), _stat(root / MANIFEST)[1])
    seen = _VERIFIED.get(key)
    if seen is not None and all(_stat(root / rel) == st for rel, st in seen.items()):
        return []
    bad = []
    for rel, (size, digest) in sums.items():
        path = root / rel
        if _stat(path) is None or path.stat().st_size != size or sha256_file(path) != digest:
            bad.append(rel)
    if not bad:
        _VERIFIED[key] = {rel: _stat(root / rel) for rel in sums}
    return bad


def _read_manifest(root: Path) -> dict | None:
    path = root / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = read_json(path)
    except DataError:
        return {"status": "unreadable"}
    return manifest if isinstance(manifest, dict) else {"status": "unreadable"}


def _is_complete(root: Path, expected: dict) -> dict | None:
    manifest = _read_manifest(root)
    if manifest is None or manifest.get("status") is not None:
        return None
    if not all(manifest.get(k) == expected[k] for k in ("version", "seed", "size", "config")):
        return None
    return manifest if not verify_world(root, manifest) else None


def _ours(manifest: dict | None) -> set[str]:
    """The files a world of ours wrote in this folder, by its manifest (complete or building)."""
    if not manifest:
        return set()
    return set(manifest.get("checksums") or {}) | set(manifest.get("written") or []) | set(manifest.get("files") or {})


def check_out_dir(out_dir: str | Path, force: bool = False) -> tuple[Path, dict | None]:
    """The world's folder and its current manifest; refuses an empty path, a file, and a folder of other files."""
    if not str(out_dir).strip():
        raise UsageError("the toy world's output folder is empty: give a folder path (e.g. --out data/toy)")
    root = Path(out_dir)
    if root.exists() and not root.is_dir():
        raise DataError(root, "not a folder: the toy world needs a folder of its own")
    manifest = _read_manifest(root)
    if manifest is None and root.is_dir() and not force:
        entries = sorted(p.name for p in root.iterdir())
        if entries:
            shown = ", ".join(entries[:4]) + (f" and {len(entries) - 4} more" if len(entries) > 4 else "")
            raise DataError(root, f"holds {shown} and no {MANIFEST}: not a toy world of ours (a real data root?); "
                            "choose an empty or new folder, or pass --force to write the world beside these files "
                            "(files at world paths are overwritten; nothing else is deleted)")
    return root, manifest


def _scene_source(cfg: ToyWorldConfig) -> tuple[SceneSource, dict[str, np.random.Generator]]:
    """The scene source and one random generator per part, as every world of `cfg` (seed included) starts."""
    sampled = [int(i) for i in sample_frame_indices(cfg.num_frames, cfg.model_frames)]
    return SceneSource(cfg.canvas, cfg.num_frames, sampled), \
        {p: np.random.default_rng([cfg.seed, k]) for k, p in enumerate(_PARTS)}


def velociti_items(size: str = "smoke", seed: int = 0) -> dict[str, int]:
    """Items per VELOCITI test of the world `build_world(size=size, seed=seed)` writes, drawn without rendering a
    frame (a plan counts them before the world is built; ~4 s for the default world, once per process)."""
    if size not in SIZES:
        raise ValueError(f"unknown world size {size!r}; choose one of {sorted(SIZES)}")
    return dict(_velociti_items(size, seed))


@functools.lru_cache(maxsize=4)
def _velociti_items(size: str, seed: int) -> tuple[tuple[str, int], ...]:
    n = SIZES[size]
    src, rngs = _scene_source(replace(ToyWorldConfig(), size=size, seed=seed))
    make_videocon(src, rngs["videocon"], n.videocon_train, n.videocon_test)  # drawn first: no scene twice
    tests, _ = make_velociti(src, rngs["velociti"], n.velociti)
    return tuple((test, sum(len(events) for events in items.values())) for test, items in tests.items())


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
    cfg = replace(config or ToyWorldConfig(), size=size, seed=seed)  # validates the seed (>= 0)
    root, previous = check_out_dir(out_dir, force)
    n = SIZES[size]
    expected = {"version": WORLD_VERSION, "seed": seed, "size": size,
                "config": {**asdict(cfg), "parts": asdict(n)}}
    if not force and (done := _is_complete(root, expected)) is not None:
        return done

    t0 = time.perf_counter()
    src, rngs = _scene_source(cfg)
    sampled = src.sampled

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
    text_files[SCENES] = ("".join(json.dumps({"video": p, "part": part, "scene": scene_to_dict(s)}, sort_keys=True)
                                  + "\n" for p, (part, s) in all_videos.items()), len(all_videos))
    # From here on files change: first say so in the manifest, with every file that is (or was) ours.
    ours = _ours(previous) | set(text_files) | set(all_videos)
    write_json(root / MANIFEST, {"status": "building", "version": WORLD_VERSION, "seed": seed, "size": size,
                                 "written": sorted(ours)})
    for path, (_, scene) in all_videos.items():
        write_mp4(root / path, render(scene), fps=cfg.fps)
    for rel, (text, count) in text_files.items():
        write_text(root / rel, text)
        files[rel] = count

    for stale in sorted(ours - set(files) - set(all_videos)):  # an earlier world's files this one does not have
        (root / stale).unlink(missing_ok=True)
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
        "checksums": checksums(root, list(files) + list(all_videos)),
    }
    write_json(root / MANIFEST, manifest)  # last: its presence (without "status") means "complete"
    return manifest


def load_scenes(data_root: str | Path) -> dict[str, tuple[str, Scene]]:
    """The ground-truth scenes of a built world: {video path under the data root: (part, Scene)}."""
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
