"""Video decoding, Video-LLaVA's uniform frame sampling, and lossless mp4 writing for the toy world.

Two decoders sit behind one function: decord (fast random access, optional dependency) and PyAV
(always installed). Both wrap FFmpeg; on the real VideoCon clip they return identical pixels for the
same frame indices. decord mis-sizes frames of some small widths (measured: 8, 12, 16, 24, 48, 72 px
with rgb24 output), so `backend="auto"` falls back to PyAV whenever decord fails.

Every problem with an input file (missing, unreadable, no video stream, too few frames) raises
`DataError` naming the file.

May import: av, decord, numpy, `hacalib.errors`, `hacalib.io`.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import DataError
from ..io import atomic_path

BACKENDS = ("auto", "decord", "pyav")


def sample_frame_indices(
    total_frames: int,
    num_frames: int = 8,
    *,
    allow_short: bool = False,
    path: str | Path = "<video>",
) -> np.ndarray:
    """Indices of `num_frames` frames spread uniformly over a video, as Video-LLaVA's HF code samples them.

    The Hugging Face example for Video-LLaVA's model class (transformers
    `models/video_llava/modeling_video_llava.py`, docstring of `forward`, and the
    `LanguageBind/Video-LLaVA-7B-hf` model card) samples
    `np.arange(0, total_frames, total_frames / 8).astype(int)`; this function computes exactly that.

    Args:
        total_frames: number of frames in the video.
        num_frames: frames to sample (Video-LLaVA uses 8).
        allow_short: when the video has fewer frames than `num_frames`, repeat frames (the same
            formula then yields repeated indices, e.g. 4 frames -> [0,0,1,1,2,2,3,3]) instead of
            raising. Off by default so that a short video never silently changes what a model sees.
        path: the video's path, only used to name the file in error messages.

    Returns:
        int64 array of length `num_frames`, non-decreasing, each in [0, total_frames).
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if total_frames < 1:
        raise DataError(path, "video has no frames")
    if total_frames < num_frames and not allow_short:
        raise DataError(
            path,
            f"video has {total_frames} frames, fewer than the {num_frames} requested "
            "(pass allow_short=True to repeat frames)",
        )
    indices = np.arange(0, total_frames, total_frames / num_frames).astype(np.int64)
    # With a float step, np.arange can return one element too many when total/num is inexact
    # (e.g. 17 frames, 7 samples). It never happens for num_frames=8 (a power of two divides
    # exactly); elsewhere the extra element is the last one, so keep the first num_frames.
    return indices[:num_frames]


# ----------------------------------------------------------------------------- decoders


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(path, "video file not found")
    if not path.is_file():
        raise DataError(path, "not a file")
    if path.stat().st_size == 0:
        raise DataError(path, "video file is empty (0 bytes)")


# A "select" callback maps the video's frame count to the indices to decode (None: every frame), so
# that one open of the file serves both counting and decoding.
Select = Callable[[int], np.ndarray] | None


def _decord_reader(path: Path):
    import decord  # optional dependency; imported lazily so PyAV-only installs work

    return decord.VideoReader(str(path))


def _decord_count(path: Path) -> int:
    return len(_decord_reader(path))


def _decord_read(path: Path, select: Select) -> np.ndarray:
    reader = _decord_reader(path)
    indices = np.arange(len(reader)) if select is None else select(len(reader))
    if len(indices) and int(np.max(indices)) >= len(reader):
        raise IndexError(f"frame index {int(np.max(indices))} >= {len(reader)} frames")
    frames = reader.get_batch([int(i) for i in indices]).asnumpy()
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"decord returned an array of shape {frames.shape}")
    return frames


def _pyav_open(path: Path):
    import av

    container = av.open(str(path))
    if not container.streams.video:
        container.close()
        raise DataError(path, "no video stream in the file")
    return container


def _pyav_count(path: Path) -> int:
    """Frame count from the container header; decode and count when the header has none (webm, some avi)."""
    with _pyav_open(path) as container:
        stream = container.streams.video[0]
        if stream.frames > 0:
            return int(stream.frames)
        return sum(1 for _ in container.decode(stream))


def _pyav_read(path: Path, select: Select) -> np.ndarray:
    """Decode sequentially (exact, no keyframe seeking) and keep the wanted frames, as the HF recipe does."""
    with _pyav_open(path) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_type = "AUTO"
        if select is None:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
            if not frames:
                raise DataError(path, "video has no decodable frames")
            if 0 < stream.frames != len(frames):
                raise DataError(path, f"the header lists {stream.frames} frames but {len(frames)} decode (truncated or damaged file)")
            return np.stack(frames)
        # Without a frame count in the header (webm, some avi), count in a first decoding pass.
        total = int(stream.frames) if stream.frames > 0 else _pyav_count(path)
        indices = select(total)
        wanted = set(int(i) for i in indices)
        last = max(wanted)
        decoded: dict[int, np.ndarray] = {}
        count = 0
        for n, frame in enumerate(container.decode(stream)):
            count = n + 1
            if n in wanted:
                decoded[n] = frame.to_ndarray(format="rgb24")
            if n >= last:
                break
        if last not in decoded:
            raise DataError(path, f"frame {last} requested but the video decodes to only {count} frames")
    # Repeated indices (allow_short) repeat the decoded frame rather than dropping it.
    return np.stack([decoded[int(i)] for i in indices])


_BACKEND_OPS = {
    "decord": {"count": _decord_count, "read": _decord_read},
    "pyav": {"count": _pyav_count, "read": _pyav_read},
}


def _run(path: Path, backend: str, op: str, *args):
    """Run `op` ('count' or 'read') with the chosen backend; 'auto' tries decord, then PyAV."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    _check_file(path)
    order = ["decord", "pyav"] if backend == "auto" else [backend]
    errors = []
    for name in order:
        try:
            return _BACKEND_OPS[name][op](path, *args)
        except DataError as exc:
            if name == order[-1]:
                raise
            errors.append(f"{name}: {exc}")
        except ImportError:
            if backend == "decord":
                raise ImportError("backend='decord' needs the decord package (pip install decord)") from None
            errors.append(f"{name}: not installed")
        except Exception as exc:  # decoder libraries raise their own types (DECORDError, av.FFmpegError, ...)
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            errors.append(f"{name}: {type(exc).__name__}: {first_line}")
    raise DataError(path, "cannot decode video (" + "; ".join(errors) + ")")


def count_frames(path: str | Path, backend: str = "auto") -> int:
    """Number of frames in a video (decord's index, or the container header / a decode pass with PyAV)."""
    path = Path(path)
    n = _run(path, backend, "count")
    if n < 1:
        raise DataError(path, "video has no frames")
    return n


def read_frames(path: str | Path, indices: Sequence[int] | np.ndarray, backend: str = "auto") -> np.ndarray:
    """Decode the frames at `indices` (presentation order, 0-based) as a (T, H, W, 3) uint8 RGB array."""
    path = Path(path)
    idx = np.asarray(indices, dtype=np.int64)
    if idx.ndim != 1 or idx.size == 0:
        raise ValueError("indices must be a non-empty 1-D sequence of frame numbers")
    if int(idx.min()) < 0:
        raise ValueError(f"negative frame index {int(idx.min())}")
    return _run(path, backend, "read", lambda total: idx)


def read_video(
    path: str | Path,
    num_frames: int = 8,
    backend: str = "auto",
    *,
    allow_short: bool = False,
) -> np.ndarray:
    """Read `num_frames` uniformly sampled frames (Video-LLaVA sampling) as a (T, H, W, 3) uint8 RGB array.

    Args:
        path: the video file.
        num_frames: frames to sample.
        backend: 'auto' (decord, falling back to PyAV), 'decord' or 'pyav'.
        allow_short: repeat frames of videos shorter than `num_frames` instead of raising.
    """
    path = Path(path)
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    return _run(path, backend, "read", lambda total: sample_frame_indices(total, num_frames, allow_short=allow_short, path=path))


def read_all_frames(path: str | Path, backend: str = "auto") -> np.ndarray:
    """Every frame of a (small) video as a (T, H, W, 3) uint8 RGB array; for tests and notebooks."""
    path = Path(path)
    frames = _run(path, backend, "read", None)
    if len(frames) == 0:
        raise DataError(path, "video has no frames")
    return frames


# ----------------------------------------------------------------------------- writer


def write_mp4(path: str | Path, frames: np.ndarray, fps: int | Fraction = 8) -> Path:
    """Write RGB frames to an H.264 mp4 that decodes back to exactly the same pixels.

    The encoder is libx264rgb with qp=0: lossless H.264 on RGB planes, so there is no RGB->YUV
    rounding (yuv444p qp=0 is off by 1-2 levels; yuv420p by up to ~240 at sharp colour edges).
    Both decord and PyAV decode these files (High 4:4:4 profile; browsers may not play them).
    One encoder thread and FFmpeg's bitexact flag make the bytes depend only on the frames and
    the library versions. The file is written to a temporary name and renamed when complete.

    Args:
        path: destination, normally ending in .mp4.
        frames: (T, H, W, 3) uint8 RGB array, T >= 1.
        fps: frames per second stored in the file.
    """
    import av

    path = Path(path)
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise DataError(path, f"frames must be a (T, H, W, 3) uint8 array with T >= 1, got {frames.dtype} {frames.shape}")
    _, height, width, _ = frames.shape
    with atomic_path(path) as tmp:
        # The temporary name does not end in .mp4, so the muxer is named explicitly.
        with av.open(str(tmp), mode="w", format="mp4", options={"fflags": "+bitexact"}) as container:
            stream = container.add_stream("libx264rgb", rate=Fraction(fps))
            stream.width, stream.height, stream.pix_fmt = width, height, "rgb24"
            stream.options = {"qp": "0"}
            stream.codec_context.thread_count = 1
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return path
