"""hacalib.data.msrvtt_qa: Video-ChatGPT-layout question/answer files joined on question_id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hacalib.data import QAItem, load_msrvtt_qa
from hacalib.errors import DataError

QUESTIONS = [
    {"video_name": "video7010", "question": "what is a girl doing?", "question_id": "v_video7010_0"},
    {"video_name": "video7010", "question": "who is singing?", "question_id": "v_video7010_1"},
    {"video_name": "video7011", "question": "what color is the car?", "question_id": "v_video7011_0"},
]
ANSWERS = [  # deliberately in another order: pairing is by id, not by position
    {"answer": "red", "type": 4, "question_id": "v_video7011_0"},
    {"answer": "sing", "type": 0, "question_id": "v_video7010_0"},
    {"answer": "girl", "type": 5, "question_id": "v_video7010_1"},
]


def write(tmp_path: Path, questions=QUESTIONS, answers=ANSWERS) -> tuple[Path, Path]:
    q, a = tmp_path / "test_q.json", tmp_path / "test_a.json"
    q.write_text(json.dumps(questions), encoding="utf-8")
    a.write_text(json.dumps(answers), encoding="utf-8")
    return q, a


def test_joins_on_question_id(tmp_path: Path):
    items = load_msrvtt_qa(*write(tmp_path))
    assert items[0] == QAItem("video7010", "what is a girl doing?", "v_video7010_0", "sing", 0, 0)
    assert [i.answer for i in items] == ["sing", "girl", "red"]
    assert [i.type for i in items] == [0, 5, 4]


def test_video_root(tmp_path: Path):
    q, a = write(tmp_path)
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "video7010.mp4").write_bytes(b"x")
    with pytest.raises(DataError, match=r"test_q\.json, row 2, key 'video_name': video not found: .*video7011\.mp4"):
        load_msrvtt_qa(q, a, video_root=videos, check_videos=True)
    (videos / "video7011.mp4").write_bytes(b"x")
    assert load_msrvtt_qa(q, a, video_root=videos, check_videos=True)[2].video_path == str(videos / "video7011.mp4")


def test_ids_must_match_one_to_one(tmp_path: Path):
    with pytest.raises(DataError, match=r"test_a\.json, key 'question_id': no answer for question_id\(s\) 1 \('v_video7010_1'\)"):
        load_msrvtt_qa(*write(tmp_path, answers=[ANSWERS[0], ANSWERS[1]]))
    extra = ANSWERS + [{"answer": "dog", "type": 5, "question_id": "v_video9_0"}, {"answer": "cat", "type": 5, "question_id": "v_video9_1"}]
    with pytest.raises(DataError, match=r"test_q\.json, key 'question_id': no question for question_id\(s\) 2 \('v_video9_0', 'v_video9_1'\)"):
        load_msrvtt_qa(*write(tmp_path, answers=extra))
    # an integer id in one file and a string in the other are different ids
    ints = [dict(a, question_id=i) for i, a in enumerate(ANSWERS)]
    with pytest.raises(DataError, match="no answer for question_id"):
        load_msrvtt_qa(*write(tmp_path, answers=ints))


def test_duplicate_ids(tmp_path: Path):
    with pytest.raises(DataError, match=r"test_q\.json, row 3, key 'question_id': repeated question_id at list positions 0, 3"):
        load_msrvtt_qa(*write(tmp_path, questions=QUESTIONS + [QUESTIONS[0]]))


def test_missing_keys_and_empty_text(tmp_path: Path):
    bad = [dict(q) for q in QUESTIONS]
    del bad[1]["question"]
    with pytest.raises(DataError, match=r"test_q\.json, row 1, key 'question': missing key"):
        load_msrvtt_qa(*write(tmp_path, questions=bad))
    bad = [dict(a) for a in ANSWERS]
    bad[2]["answer"] = ""
    with pytest.raises(DataError, match=r"test_a\.json, row 2, key 'answer': empty text"):
        load_msrvtt_qa(*write(tmp_path, answers=bad))
    bad = [dict(a) for a in ANSWERS]
    del bad[0]["question_id"]
    with pytest.raises(DataError, match=r"test_a\.json, row 0, key 'question_id': missing key"):
        load_msrvtt_qa(*write(tmp_path, answers=bad))


def test_malformed_and_wrong_shape(tmp_path: Path):
    q, a = write(tmp_path)
    q.write_text('[{"video_name": "v", "question": "q?", "question_id": "1"},\n {"video_name": }]', encoding="utf-8")
    with pytest.raises(DataError, match=r"test_q\.json: malformed JSON at line 2"):
        load_msrvtt_qa(q, a)
    q.write_text(json.dumps({"v_video7010_0": QUESTIONS[0]}), encoding="utf-8")
    with pytest.raises(DataError, match=r"test_q\.json: expected a JSON list"):
        load_msrvtt_qa(q, a)
    q.write_text(json.dumps(["what?"]), encoding="utf-8")
    with pytest.raises(DataError, match=r"test_q\.json, row 0: expected an object"):
        load_msrvtt_qa(q, a)
    with pytest.raises(DataError, match=r"absent\.json: file not found"):
        load_msrvtt_qa(tmp_path / "absent.json", a)
