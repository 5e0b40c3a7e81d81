"""hacalib.data.video: Video-LLaVA frame sampling, decoding with decord and PyAV, lossless mp4 writing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import numpy as np
import pytest

from hacalib.data import video
from hacalib.errors import DataError

REAL_CLIP = "videocon/example/y5xuvHpDPZQ_000005_000015.mp4"

try:
    import decord  # noqa: F401

    HAVE_DECORD = True
except ImportError:
    HAVE_DECORD = False
needs_decord = pytest.mark.skipif(not HAVE_DECORD, reason="decord not installed (optional dependency)")


def _frames(t: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    # Random pixels are the hardest case for a codec: any loss shows up.
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------- sampling


def test_sampling_matches_the_hf_recipe_for_8_frames():
    assert video.sample_frame_indices(300).tolist() == [0, 37, 75, 112, 150, 187, 225, 262]
    for total in range(8, 3000):
        expected = np.arange(0, total, total / 8).astype(int)
        np.testing.assert_array_equal(video.sample_frame_indices(total, 8), expected)


def test_sampling_always_returns_num_frames_in_range():
    # np.arange with a float step yields one extra element for e.g. 17 frames / 7 samples.
    assert len(np.arange(0, 17, 17 / 7)) == 8
    for num in range(1, 33):
        for total in range(num, 400):
            idx = video.sample_frame_indices(total, num)
            assert len(idx) == num, (total, num)
            assert idx[0] == 0 and idx[-1] < total and np.all(np.diff(idx) > 0)


def test_short_video_raises_unless_allowed():
    with pytest.raises(DataError, match=r"clip\.mp4: video has 4 frames, fewer than the 8"):
        video.sample_frame_indices(4, 8, path="clip.mp4")
    assert video.sample_frame_indices(4, 8, allow_short=True).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    with pytest.raises(DataError, match="no frames"):
        video.sample_frame_indices(0, 8, path="clip.mp4")
    with pytest.raises(ValueError):
        video.sample_frame_indices(10, 0)


# ----------------------------------------------------------------------------- the real clip


@pytest.mark.fixtures
@needs_decord
def test_real_clip_decord_and_pyav_agree(shared_fixtures: Path):
    clip = shared_fixtures / REAL_CLIP
    assert video.count_frames(clip, "decord") == video.count_frames(clip, "pyav") == 300
    by_decord = video.read_video(clip, backend="decord")
    by_pyav = video.read_video(clip, backend="pyav")
    assert by_decord.shape == (8, 720, 1280, 3) and by_decord.dtype == np.uint8
    # Same indices, same pixels: both decoders are FFmpeg underneath.
    np.testing.assert_array_equal(by_decord, by_pyav)
    np.testing.assert_array_equal(video.read_video(clip), by_decord)


@pytest.mark.fixtures
def test_real_clip_frames_are_the_sampled_ones(shared_fixtures: Path):
    clip = shared_fixtures / REAL_CLIP
    sampled = video.read_video(clip, num_frames=8, backend="pyav")
    again = video.read_frames(clip, [0, 37, 75, 112, 150, 187, 225, 262], backend="pyav")
    np.testing.assert_array_equal(sampled, again)
    assert not np.array_equal(sampled[0], sampled[-1])  # the frames differ: the clip moves


# ----------------------------------------------------------------------------- writing


@pytest.mark.parametrize("size", [(32, 32), (48, 48), (64, 64), (33, 40)])
def test_write_mp4_is_lossless_with_pyav(tmp_path: Path, size):
    frames = _frames(16, *size)
    out = video.write_mp4(tmp_path / "v.mp4", frames, fps=8)
    np.testing.assert_array_equal(video.read_all_frames(out, backend="pyav"), frames)
    np.testing.assert_array_equal(video.read_all_frames(out), frames)  # auto: decord or fallback
    np.testing.assert_array_equal(video.read_video(out, 8), frames[video.sample_frame_indices(16, 8)])


@needs_decord
@pytest.mark.parametrize("side", [32, 40, 56, 64])
def test_write_mp4_is_lossless_with_decord(tmp_path: Path, side):
    frames = _frames(16, side, side)
    out = video.write_mp4(tmp_path / "v.mp4", frames)
    np.testing.assert_array_equal(video.read_all_frames(out, backend="decord"), frames)


@needs_decord
def test_auto_falls_back_when_decord_mis_sizes_small_widths(tmp_path: Path):
    # decord 0.6.0 cannot return rgb24 frames 48 px wide (buffer size check fails); PyAV can.
    frames = _frames(16, 48, 48)
    out = video.write_mp4(tmp_path / "v.mp4", frames)
    with pytest.raises(DataError, match="v.mp4: cannot decode video"):
        video.read_all_frames(out, backend="decord")
    np.testing.assert_array_equal(video.read_video(out, 8, backend="auto"), frames[video.sample_frame_indices(16, 8)])


def test_write_mp4_is_deterministic_and_atomic(tmp_path: Path):
    frames = _frames(16, 32, 32, seed=3)
    a = video.write_mp4(tmp_path / "a.mp4", frames)
    b = video.write_mp4(tmp_path / "b.mp4", frames)
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "b.mp4"]  # no temporary files left
    with av.open(str(a)) as c:
        stream = c.streams.video[0]
        assert (stream.frames, stream.average_rate, stream.codec_context.name) == (16, 8, "h264")


def test_write_mp4_rejects_bad_arrays_and_leaves_nothing(tmp_path: Path):
    for bad in (np.zeros((4, 32, 32, 3), np.float32), np.zeros((32, 32, 3), np.uint8), np.zeros((0, 32, 32, 3), np.uint8)):
        with pytest.raises(DataError, match="out.mp4: frames must be"):
            video.write_mp4(tmp_path / "out.mp4", bad)
    assert list(tmp_path.iterdir()) == []


def test_short_video_read(tmp_path: Path):
    frames = _frames(4, 32, 32)
    out = video.write_mp4(tmp_path / "short.mp4", frames)
    with pytest.raises(DataError, match=r"short\.mp4: video has 4 frames"):
        video.read_video(out, 8)
    np.testing.assert_array_equal(video.read_video(out, 8, allow_short=True), frames[[0, 0, 1, 1, 2, 2, 3, 3]])


# ----------------------------------------------------------------------------- bad files


@pytest.mark.parametrize("backend", ["auto", "pyav"] + (["decord"] if HAVE_DECORD else []))
def test_bad_files_name_the_file(tmp_path: Path, backend: str):
    missing = tmp_path / "missing.mp4"
    with pytest.raises(DataError, match=r"missing\.mp4: video file not found"):
        video.read_video(missing, backend=backend)

    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.mp4: video file is empty"):
        video.read_video(empty, backend=backend)

    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"this is not a video" * 50)
    with pytest.raises(DataError, match=r"garbage\.mp4: cannot decode video"):
        video.read_video(garbage, backend=backend)

    # An mp4 whose only video stream never received a frame: FFmpeg sees no video stream at all.
    no_frames = tmp_path / "noframes.mp4"
    with av.open(str(no_frames), "w", format="mp4") as c:
        s = c.add_stream("libx264rgb", rate=8)
        s.width, s.height, s.pix_fmt = 32, 32, "rgb24"
        c.start_encoding()
    with pytest.raises(DataError, match=r"noframes\.mp4: .*(no video stream|cannot decode)"):
        video.read_video(no_frames, backend=backend)
    with pytest.raises(DataError, match=r"noframes\.mp4"):
        video.read_all_frames(no_frames, backend=backend)


def test_truncated_file_is_an_error_not_fewer_frames(tmp_path: Path):
    # faststart puts the index first, so half a file still opens and claims 16 frames.
    frames = _frames(16, 32, 32)
    full = tmp_path / "full.mp4"
    with av.open(str(full), "w", format="mp4", options={"movflags": "+faststart"}) as c:
        s = c.add_stream("libx264rgb", rate=8)
        s.width, s.height, s.pix_fmt, s.options = 32, 32, "rgb24", {"qp": "0"}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    data = full.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.mp4: .*decode"):
        video.read_video(cut, 8)
    with pytest.raises(DataError, match=r"cut\.mp4: the header lists 16 frames but \d+ decode"):
        video.read_all_frames(cut, backend="pyav")


def test_unknown_backend(tmp_path: Path):
    out = video.write_mp4(tmp_path / "v.mp4", _frames(8, 32, 32))
    with pytest.raises(ValueError, match="backend"):
        video.read_video(out, backend="opencv")


def test_without_decord_auto_uses_pyav(tmp_path: Path, monkeypatch):
    def no_decord(path):
        raise ImportError("No module named 'decord'")

    monkeypatch.setattr(video, "_decord_reader", no_decord)
    frames = _frames(16, 32, 32)
    out = video.write_mp4(tmp_path / "v.mp4", frames)
    np.testing.assert_array_equal(video.read_video(out, 8), frames[video.sample_frame_indices(16, 8)])
    assert video.count_frames(out) == 16
    with pytest.raises(ImportError, match="backend='decord' needs the decord package"):
        video.read_video(out, backend="decord")
