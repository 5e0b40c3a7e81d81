"""Video integrity before long work: every video a run will read is checked first, and the bad ones are named.

Two checks, one answer (`check_videos`):
- a toy world (its `toyworld.json` records each file's size and sha256) is checked against its manifest: seconds;
- any other video is decode-checked: the container opens, the frame count is read (enough for the frames the model
  samples), and the last sampled frame (at about 7/8 of the video) is decoded, which also catches a file cut short
  after its header.

A missing, empty, truncated or undecodable file raises one `DataError` that names the benchmark file, the row or key
of the first bad video and how many are bad in all, before the first model call. A check is remembered per process
by (path, size, mtime), so the many runs of one reproduction check each video once.

May import: numpy, tqdm, `hacalib.errors`, `hacalib.io`, `.video`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from ..errors import DataError
from ..io import sha256_file
from .video import count_frames, read_frames, sample_frame_indices

MANIFEST = "toyworld.json"
_CHECKED: dict[tuple[str, int, int, int], str | None] = {}  # (path, size, mtime_ns, frames) -> problem or None


_MANIFESTS: dict[tuple[str, int], dict | None] = {}  # (manifest path, mtime_ns) -> its checksums


def _world_checksums(path: Path) -> tuple[Path, dict] | None:
    """(world root, {relative path: [bytes, sha256]}) of the toy world holding `path`, if it is in one."""
    for parent in path.parents:
        manifest = parent / MANIFEST
        try:
            key = (str(manifest), manifest.stat().st_mtime_ns)
        except OSError:
            continue
        if key not in _MANIFESTS:
            try:
                sums = json.loads(manifest.read_text(encoding="utf-8")).get("checksums")
            except (json.JSONDecodeError, AttributeError, OSError):
                sums = None
            _MANIFESTS[key] = sums if isinstance(sums, dict) else None
        return (parent, _MANIFESTS[key]) if _MANIFESTS[key] is not None else None
    return None


def video_problem(path: str | Path, num_frames: int = 8) -> str | None:
    """What is wrong with one video file ('video not found', 'cannot decode video ...'), or None."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return "video not found"
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, num_frames)
    if key in _CHECKED:
        return _CHECKED[key]
    problem = None
    world = _world_checksums(path.resolve())
    rel = str(path.resolve().relative_to(world[0].resolve())) if world else None
    if world and rel in world[1]:
        size, digest = world[1][rel]
        if st.st_size != size or sha256_file(path) != digest:
            problem = f"differs from the toy world's manifest ({st.st_size} bytes, recorded {size}); rebuild the world"
    else:
        try:
            total = count_frames(path)
            read_frames(path, [int(sample_frame_indices(total, num_frames, path=path)[-1])])
        except DataError as exc:
            problem = str(exc).split(": ", 1)[-1]
    _CHECKED[key] = problem
    return problem


def check_videos(videos: Sequence[tuple[Any, Any, int | None, str | None]], *, num_frames: int = 8,
                 progress: bool = True, what: str = "videos") -> None:
    """Check every (video path, source file, row, key) before any work; raise one DataError naming the first bad one.

    Args:
        videos: one entry per item that reads a video (repeated videos are checked once).
        num_frames: frames the model samples per video (a shorter video is an error, as when it is read).
        progress: a tqdm bar when there are many videos to check and stderr is a terminal.
        what: named in the bar.
    """
    from tqdm.auto import tqdm

    seen: dict[str, str | None] = {}
    bad = []
    unique = list(dict.fromkeys(str(v[0]) for v in videos))
    # disable=None: no bar where stderr is not a terminal (notebook outputs stay clean)
    bar = tqdm(unique, desc=f"checking {what}", disable=True if not progress or len(unique) < 200 else None,
               leave=False)
    for video in bar:
        seen[video] = video_problem(video, num_frames)
    for video, source, row, key in videos:
        if seen[str(video)] is not None:
            bad.append((video, source, row, key, seen[str(video)]))
    if bad:
        video, source, row, key, problem = bad[0]
        n = len({str(b[0]) for b in bad})
        more = f" ({n} of {len(unique)} videos are bad; the first is named)" if n > 1 else ""
        raise DataError(source, f"{problem}: {video}{more}", row=row, key=key)
