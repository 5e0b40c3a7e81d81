"""hacalib.data.ssv2: retrieval matrices, template extraction and score files; bad input names file and rows."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from hacalib.data import extract_template, load_retrieval_matrix, load_retrieval_scores
from hacalib.errors import DataError

# VideoCon's mPLUG-Owl entailment prompt (src/prepare_data_for_inference.py), as in eval_ssv2_*.csv
OWL = (
    "The following is a conversation between a curious human and AI assistant. The assistant gives helpful, "
    "detailed, and polite answers to the user's questions.\nHuman: <|video|>\nHuman: Does this video entail the "
    'description: "{t}"?\nAI: '
)
TEMPLATES = ["Covering [something] with [something]", "Pushing [something] from left to right", 'Putting "it" down']
VIDEOS = ["videos/3.avi", "videos/10.avi", "videos/2.avi", "videos/1.avi"]
POSITIVE = {0: {"videos/3.avi"}, 1: {"videos/10.avi", "videos/1.avi"}, 2: {"videos/2.avi"}}


def matrix_rows():
    return [[v, OWL.format(t=t), int(v in POSITIVE[q])] for q, t in enumerate(TEMPLATES) for v in VIDEOS]


def write(path: Path, rows, header=("videopath", "caption", "match")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        if header:
            w.writerow(header)
        w.writerows(rows)
    return path


def score_rows(matrix):
    # score = 10 * query index + video number, so alignment errors would show
    return [[v, c, f"{10 * TEMPLATES.index(extract_template(c)) + int(v[7:-4])}", "0.5", "0.5"] for v, c, _ in matrix]


def test_extract_template():
    assert extract_template(OWL.format(t=TEMPLATES[0])) == TEMPLATES[0]
    assert extract_template(OWL.format(t=TEMPLATES[2])) == 'Putting "it" down'  # inner quotes survive
    llava = 'USER: <video>\nDoes this video entail the description: "Opening [something]"? ASSISTANT:'
    assert extract_template(llava) == "Opening [something]"
    assert extract_template("Opening [something]") == "Opening [something]"  # not wrapped: unchanged


def test_matrix(tmp_path: Path):
    m = load_retrieval_matrix(write(tmp_path / "eval_ssv2_toy.csv", matrix_rows()))
    assert m.queries == tuple(TEMPLATES)
    assert m.videos == ("videos/1.avi", "videos/10.avi", "videos/2.avi", "videos/3.avi")  # sorted as VideoCon's script
    assert m.shape == (3, 4) and m.match.dtype == bool
    assert m.match.tolist() == [[False, False, False, True], [True, True, False, False], [False, False, True, False]]
    assert len(m.rows) == 12 and m.rows[0].query == TEMPLATES[0] and m.rows[0].match is True and m.rows[1].match is False


def test_scores_align_with_matrix(tmp_path: Path):
    rows = matrix_rows()
    m = load_retrieval_matrix(write(tmp_path / "m.csv", rows))
    shuffled = score_rows(rows)[::-1]
    s = load_retrieval_scores(write(tmp_path / "s.csv", shuffled, header=None), m)
    expected = np.array([[10 * q + int(v[7:-4]) for v in m.videos] for q in range(3)], dtype=float)
    np.testing.assert_array_equal(s, expected)
    # a scores file may carry the bare template and a header
    bare = [[v, extract_template(c), e, p, n] for v, c, e, p, n in shuffled]
    s2 = load_retrieval_scores(write(tmp_path / "s2.csv", bare, header=("videopath", "caption", "entailment", "pos", "neg")), m)
    np.testing.assert_array_equal(s2, expected)


def test_matrix_bad_inputs(tmp_path: Path):
    rows = matrix_rows()
    with pytest.raises(DataError, match=r"m\.csv, key 'match': missing column"):
        load_retrieval_matrix(write(tmp_path / "m.csv", [r[:2] for r in rows], header=("videopath", "caption")))
    bad = [list(r) for r in rows]
    bad[5][2] = "yes"
    with pytest.raises(DataError, match=r"m\.csv, row 5, key 'match': match must be 0 or 1"):
        load_retrieval_matrix(write(tmp_path / "m.csv", bad))
    bad = [list(r) for r in rows]
    bad[7][1] = ""
    with pytest.raises(DataError, match=r"m\.csv, row 7, key 'caption': empty text"):
        load_retrieval_matrix(write(tmp_path / "m.csv", bad))
    with pytest.raises(DataError, match=r"m\.csv, row 12: repeated \(query, video\) pairs at rows 1, 12"):
        load_retrieval_matrix(write(tmp_path / "m.csv", rows + [rows[1]]))
    with pytest.raises(DataError, match=r"m\.csv: 2 of 12 \(query, video\) pairs missing, e\.g\. \('Covering"):
        load_retrieval_matrix(write(tmp_path / "m.csv", rows[1:3] + rows[4:]))
    no_pos = [r if r[1] != OWL.format(t=TEMPLATES[2]) else [r[0], r[1], 0] for r in rows]
    with pytest.raises(DataError, match=r"m\.csv: 1 quer\(ies\) without any matching video"):
        load_retrieval_matrix(write(tmp_path / "m.csv", no_pos))
    two_prompts = [list(r) for r in rows]
    two_prompts[1][1] = TEMPLATES[0]  # same template, unwrapped in this row only
    with pytest.raises(DataError, match=r"m\.csv, row 1, key 'caption': rows 0 and 1 wrap the same template"):
        load_retrieval_matrix(write(tmp_path / "m.csv", two_prompts))


def test_scores_bad_inputs(tmp_path: Path):
    rows = matrix_rows()
    m = load_retrieval_matrix(write(tmp_path / "m.csv", rows))
    scores = score_rows(rows)
    with pytest.raises(DataError, match=r"s\.csv: 3 of 12 \(query, video\) pairs missing"):
        load_retrieval_scores(write(tmp_path / "s.csv", scores[3:], header=None), m)
    with pytest.raises(DataError, match=r"s\.csv, row 12: repeated \(query, video\) pairs at rows 0, 12"):
        load_retrieval_scores(write(tmp_path / "s.csv", scores + [scores[0]], header=None), m)
    bad = [list(r) for r in scores]
    bad[4][2] = "high"
    with pytest.raises(DataError, match=r"s\.csv, row 4, key 'entailment': entailment score is not a number"):
        load_retrieval_scores(write(tmp_path / "s.csv", bad, header=None), m)
    bad[4][2] = "nan"
    with pytest.raises(DataError, match=r"s\.csv, row 4, key 'entailment': .*not finite"):
        load_retrieval_scores(write(tmp_path / "s.csv", bad, header=None), m)
    bad = [list(r) for r in scores]
    bad[2][0] = "videos/99.avi"
    with pytest.raises(DataError, match=r"s\.csv, row 2: .*videos/99\.avi.*unknown video"):
        load_retrieval_scores(write(tmp_path / "s.csv", bad, header=None), m)
    with pytest.raises(DataError, match=r"s\.csv, row 0: expected 5 fields, found 3"):
        load_retrieval_scores(write(tmp_path / "s.csv", [r[:3] for r in scores], header=None), m)


# ----------------------------------------------------------------------------- real samples


def test_real_ssv2_temporal():
    from hacalib.samples import SSV2_TEMPORAL_MATRIX, SSV2_TEMPORAL_SCORES

    m = load_retrieval_matrix(SSV2_TEMPORAL_MATRIX)
    assert m.shape == (18, 216)
    assert m.match.sum(axis=1).tolist() == [12] * 18
    assert m.queries[0] == "Covering [something] with [something]"
    assert all("entail" not in q and "[something]" in q for q in m.queries)
    s = load_retrieval_scores(SSV2_TEMPORAL_SCORES, m)
    assert s.shape == (18, 216) and np.isfinite(s).all() and ((s >= 0) & (s <= 1)).all()
    # first scores row: videos/104599.avi with the first query -> 0.89453125
    assert s[0, m.video_index()["videos/104599.avi"]] == 0.89453125
