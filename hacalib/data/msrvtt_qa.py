"""MSRVTT-QA in the Video-ChatGPT layout -> one item per question.

`test_q.json` is a list of `{video_name, question, question_id}`, `test_a.json` a list of
`{answer, type, question_id}`. Video-ChatGPT's scripts pair the two lists by position; this loader
pairs them by `question_id` and requires the ids to match one-to-one, so a reordered or truncated
file is an error rather than a silent mismatch. Videos are `<video_root>/<video_name>.mp4`.

May import: its own package's modules, `hacalib.errors`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError
from ._common import describe_groups, find_duplicates, read_json_strict, require_text, resolve_video


@dataclass(frozen=True)
class QAItem:
    """One question with its reference answer. `question_id` and `type` keep their JSON types."""

    video_name: str
    question: str
    question_id: Any
    answer: str
    type: Any
    row: int
    video_path: str | None = None


def _records(path: Path, required: tuple[str, ...]) -> list[dict]:
    data = read_json_strict(path)
    if not isinstance(data, list):
        raise DataError(path, f"expected a JSON list of objects, found {type(data).__name__}")
    if not data:
        raise DataError(path, "empty list")
    for i, rec in enumerate(data):
        if not isinstance(rec, dict):
            raise DataError(path, f"expected an object, found {type(rec).__name__}", row=i)
        for key in required:
            if key not in rec:
                raise DataError(path, "missing key", row=i, key=key)
        qid = rec["question_id"]
        if not isinstance(qid, (str, int)) or isinstance(qid, bool) or (isinstance(qid, str) and not qid.strip()):
            raise DataError(path, f"question_id must be a non-empty string or an integer, found {qid!r}", row=i, key="question_id")
    groups = find_duplicates(rec["question_id"] for rec in data)
    if groups:
        raise DataError(path, f"repeated question_id at list positions {describe_groups(groups)}", row=groups[0][1], key="question_id")
    return data


def _ids(values: list, limit: int = 5) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return f"{len(values)} ({shown}{', ...' if len(values) > limit else ''})"


def load_msrvtt_qa(
    q_path: str | Path,
    a_path: str | Path,
    video_root: str | Path | None = None,
    check_videos: bool = False,
) -> list[QAItem]:
    """Load questions and answers, joined on question_id, in the order of the questions file.

    Args:
        q_path: `test_q.json`.
        a_path: `test_a.json`.
        video_root: folder with `<video_name>.mp4`; sets `video_path`.
        check_videos: require each video to exist (needs `video_root`).

    Raises:
        DataError naming the file and list position/key: malformed JSON, a missing key, an empty
        question/answer, a repeated question_id, ids present in one file only (listed), a missing video.
    """
    q_path, a_path = Path(q_path), Path(a_path)
    questions = _records(q_path, ("video_name", "question", "question_id"))
    answers = _records(a_path, ("answer", "question_id"))
    by_id = {rec["question_id"]: (i, rec) for i, rec in enumerate(answers)}
    q_ids = [rec["question_id"] for rec in questions]
    no_answer = [q for q in q_ids if q not in by_id]
    if no_answer:
        raise DataError(a_path, f"no answer for question_id(s) {_ids(no_answer)} from {q_path}", key="question_id")
    q_set = set(q_ids)
    no_question = [a for a in by_id if a not in q_set]
    if no_question:
        raise DataError(q_path, f"no question for question_id(s) {_ids(no_question)} answered in {a_path}", key="question_id")
    items = []
    for i, q in enumerate(questions):
        j, a = by_id[q["question_id"]]
        video_name = require_text(q_path, q, "video_name", row=i)
        items.append(QAItem(
            video_name=video_name,
            question=require_text(q_path, q, "question", row=i),
            question_id=q["question_id"],
            answer=require_text(a_path, a, "answer", row=j),
            type=a.get("type"),
            row=i,
            video_path=resolve_video(q_path, video_root, f"{video_name}.mp4", check=check_videos, row=i, key="video_name"),
        ))
    return items
