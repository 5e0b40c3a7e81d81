"""hacalib.data.layout: the data_root paths and the present/missing check notebooks use."""

from __future__ import annotations

from pathlib import Path

import pytest

from hacalib.data import VELOCITI_TESTS, DataRoot


def test_paths_follow_the_layout(tmp_path: Path):
    r = DataRoot(tmp_path)
    assert r.videocon_csv == tmp_path / "videocon/videocon_llm_entailment.csv"
    assert r.videocon_videos == tmp_path / "videocon/videos"
    assert r.velociti_test("coref") == tmp_path / "velociti/coref.json"
    assert r.velociti_videos == tmp_path / "velociti/videos"
    assert r.ssv2_matrix("events") == tmp_path / "ssv2/eval_ssv2_events.csv"
    assert r.ssv2_videos == tmp_path / "ssv2/videos"
    assert (r.msrvtt_qa_questions, r.msrvtt_qa_answers) == (tmp_path / "msrvtt_qa/test_q.json", tmp_path / "msrvtt_qa/test_a.json")
    assert r.msrvtt_qa_videos == tmp_path / "msrvtt_qa/videos"
    assert r.pretrain_jsonl == tmp_path / "pretrain/pretrain.jsonl"
    assert r.toyworld_manifest == tmp_path / "toyworld.json"
    with pytest.raises(ValueError):
        r.velociti_test("chrono")


def touch(p: Path) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x")


def test_check_reports_present_and_missing(tmp_path: Path):
    r = DataRoot(tmp_path)
    assert not any(r.check().values())
    assert r.benchmarks() == {"videocon": False, "velociti": False, "ssv2": False, "msrvtt_qa": False}

    touch(r.videocon_csv)
    r.videocon_videos.mkdir(parents=True)  # an empty folder does not count
    assert r.check()["videocon"] and not r.check()["videocon/videos"]
    touch(r.videocon_videos / "msr-vtt/video1.mp4")
    for t in VELOCITI_TESTS:
        touch(r.velociti_test(t))
    touch(r.ssv2_matrix("toy"))
    touch(r.ssv2_dir / "eval_ssv2_toy_scores.csv")  # a scores file is not a matrix
    touch(r.ssv2_videos / "a.mp4")
    c = r.check()
    assert c["videocon/videos"] and all(c[f"velociti/{t}"] for t in VELOCITI_TESTS)
    assert r.ssv2_names() == ["toy"] and c["ssv2/toy"] and "ssv2/temporal" not in c
    assert r.benchmarks() == {"videocon": True, "velociti": False, "ssv2": True, "msrvtt_qa": False}
    text = r.describe()
    assert "present  velociti/coref" in text and "missing  velociti/videos" in text and str(r.velociti_videos) in text
