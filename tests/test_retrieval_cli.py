"""`haca score-retrieval`: a hand-made 2 x 4 matrix, bad inputs, and the real VideoCon fixture scores."""

import csv
import json
import re

import pytest

from hacalib.errors import DataError
from hacalib.report.retrieval_report import main, score_retrieval

VIDEOS = ["v1.mp4", "v2.mp4", "v3.mp4", "v4.mp4"]
# q1: positives v1, v3 ranked 1st and 3rd -> AP 5/6; q2: positive v4 ranked 1st -> AP 1
MATCH = {"q1": [1, 0, 1, 0], "q2": [0, 0, 0, 1]}
SCORE = {"q1": [0.9, 0.8, 0.7, 0.6], "q2": [0.1, 0.2, 0.3, 0.4]}


def _write(tmp_path, match=MATCH, score=SCORE, drop_last=False):
    mpath, spath = tmp_path / "eval.csv", tmp_path / "scores.csv"
    with open(mpath, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["videopath", "caption", "match"])
        for q, row in match.items():
            w.writerows([v, q, x] for v, x in zip(VIDEOS, row))
    rows = [[v, q, s, s, 1 - s] for q, row in score.items() for v, s in zip(VIDEOS, row)]
    rows = rows[::-1]  # scores pair by (videopath, caption), not by line order
    with open(spath, "w", newline="") as f:
        csv.writer(f).writerows(rows[:-1] if drop_last else rows)
    return mpath, spath


def test_hand_matrix(tmp_path, capsys):
    mpath, spath = _write(tmp_path)
    r = score_retrieval(mpath, spath)
    assert (r["n_queries"], r["n_videos"], r["positives"]) == (2, 4, 3)
    assert r["map"] == pytest.approx((5 / 6 + 1) / 2)
    assert r["map_videocon"] == r["map_ties_best"] == r["map_ties_worst"] == pytest.approx(r["map"])
    assert (r["R@1"], r["R@5"]) == (1.0, 1.0)
    assert r["ties"]["tied_groups"] == 0 and not r["collapsed"]

    out = tmp_path / "res.json"
    assert main(["--matrix", str(mpath), "--scores", str(spath), "--json-out", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "mAP (ties grouped, scikit-learn)   91.7" in lines[2]
    assert json.loads(lines[-1])["map"] == pytest.approx(r["map"])
    assert json.loads(out.read_text())["map"] == pytest.approx(r["map"])


def test_constant_scores_are_flagged(tmp_path, capsys):
    mpath, spath = _write(tmp_path, score={"q1": [0.5] * 4, "q2": [0.5] * 4})
    assert main(["--matrix", str(mpath), "--scores", str(spath)]) == 0
    assert "COLLAPSED" in capsys.readouterr().out


@pytest.mark.parametrize(
    "kwargs,where,msg",
    [({"drop_last": True}, "scores.csv", "1 of 8 (query, video) pairs missing, e.g. ('q1', 'v1.mp4')"),
     ({"match": {"q1": [1, 0, 2, 0], "q2": [0, 0, 0, 1]}}, "eval.csv, row 2, key 'match'", "match must be 0 or 1"),
     ({"match": {"q1": [1, 0, 1, 0], "q2": [0, 0, 0, 0]}}, "eval.csv", "without any matching video, e.g. 'q2'")],
)
def test_bad_inputs_name_file_and_row(tmp_path, capsys, kwargs, where, msg):
    mpath, spath = _write(tmp_path, **kwargs)
    with pytest.raises(DataError, match=re.escape(msg)) as err:
        score_retrieval(mpath, spath)
    assert where in str(err.value)
    assert main(["--matrix", str(mpath), "--scores", str(spath)]) == 2
    assert msg in capsys.readouterr().err


@pytest.mark.fixtures
def test_fixture_prints_videocon_map(shared_fixtures, capsys):
    d = shared_fixtures / "ssv2_temporal"
    argv = ["--matrix", str(d / "eval_ssv2_temporal.csv"), "--scores", str(d / "eval_ssv2_temporal_scores.csv")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "mAP  15.5" in out and "(18 queries x 216 videos, 216 positives)" in out
    r = json.loads(out.strip().splitlines()[-1])
    assert 100 * r["map_videocon"] == pytest.approx(15.5, abs=0.05)
    assert 100 * r["map"] == pytest.approx(13.566, abs=1e-3)
    assert r["ties"]["positives_tied_with_negative"] == 215
