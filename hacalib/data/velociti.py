"""VELOCITI v1 (test only: its licence forbids tuning on it) -> one item per (test, video, event).

One JSON file per test, named as in katha-ai/VELOCITI's evaluation scripts (`data_dict` in
`main_eval.py` / `vidllm_eval.py`): `agent_iden.json, agent_bind.json, action_bind.json,
action_mod.json, action_adv.json, coref.json, sequence.json, control.json`. Each maps
`{video_id: {event: {"pos": str, "neg": str}}}`; `control.json` instead holds
`{"pos_cap": str, "neg_cap": str, "neg_vid": video_id}` (the negative caption belongs to `neg_vid`).
Videos are `<video_root>/<video_id>.mp4` (10 s clips).

May import: its own package's modules, `hacalib.errors`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..errors import DataError
from ._common import read_json_strict, require_text, resolve_video

TESTS = ("agent_iden", "agent_bind", "action_bind", "action_mod", "action_adv", "coref", "sequence", "control")
CONTROL = "control"


@dataclass(frozen=True)
class VelocitiItem:
    """One caption pair. For `control`, `neg` is another video's caption and `neg_video` that video."""

    test: str
    video_id: str
    event: str
    pos: str
    neg: str
    neg_video: str | None = None
    video_path: str | None = None
    neg_video_path: str | None = None


def velociti_file(root_dir: str | Path, test: str) -> Path:
    """Path of one test's JSON file under `root_dir` (`<data_root>/velociti`)."""
    if test not in TESTS:
        raise ValueError(f"unknown VELOCITI test {test!r}; known: {', '.join(TESTS)}")
    return Path(root_dir) / f"{test}.json"


def load_velociti_test(
    path: str | Path,
    test: str,
    video_root: str | Path | None = None,
    check_videos: bool = False,
) -> list[VelocitiItem]:
    """Load one test file; items keep the file's order (video, then event).

    Args:
        path: the test's JSON file.
        test: its name (one of TESTS); decides between the `pos/neg` and the control format.
        video_root: folder with `<video_id>.mp4`; sets `video_path` (and `neg_video_path`).
        check_videos: require the videos to exist (needs `video_root`).

    Raises:
        DataError naming the file and the key (`video_id/event/field`) for malformed JSON, a wrong
        structure, a missing or empty caption, a repeated key, or a missing video.
    """
    if test not in TESTS:
        raise ValueError(f"unknown VELOCITI test {test!r}; known: {', '.join(TESTS)}")
    path = Path(path)
    data = read_json_strict(path)
    if not isinstance(data, dict):
        raise DataError(path, f"expected a JSON object {{video_id: {{event: ...}}}}, found {type(data).__name__}")
    if not data:
        raise DataError(path, "no videos in the file")
    fields = ("pos_cap", "neg_cap") if test == CONTROL else ("pos", "neg")
    items: list[VelocitiItem] = []
    for video_id, events in data.items():
        if not isinstance(events, dict) or not events:
            raise DataError(path, "expected a non-empty object of events", key=video_id)
        for event, caps in events.items():
            where = f"{video_id}/{event}"
            if not isinstance(caps, dict):
                raise DataError(path, f"expected an object with {' and '.join(fields)}", key=where)
            pos = require_text(path, caps, fields[0], where=where)
            neg = require_text(path, caps, fields[1], where=where)
            neg_video = require_text(path, caps, "neg_vid", where=where) if test == CONTROL else None
            items.append(VelocitiItem(
                test=test, video_id=video_id, event=event, pos=pos, neg=neg, neg_video=neg_video,
                video_path=resolve_video(path, video_root, f"{video_id}.mp4", check=check_videos, key=where),
                neg_video_path=None if neg_video is None else resolve_video(
                    path, video_root, f"{neg_video}.mp4", check=check_videos, key=f"{where}/neg_vid"),
            ))
    return items


def load_velociti(
    root_dir: str | Path,
    tests: Iterable[str] | None = None,
    video_root: str | Path | None = None,
    check_videos: bool = False,
) -> list[VelocitiItem]:
    """Load several tests from `root_dir` (`<data_root>/velociti`), in the order given.

    Args:
        root_dir: folder with the per-test JSON files.
        tests: test names; None means all eight (each file must then exist).
        video_root: folder with `<video_id>.mp4`; None leaves `video_path` unset.
        check_videos: require the videos to exist.
    """
    names = list(TESTS if tests is None else tests)
    items: list[VelocitiItem] = []
    for test in names:
        items.extend(load_velociti_test(velociti_file(root_dir, test), test, video_root, check_videos))
    return items
