"""hacalib.data.videocon: the VideoCon entailment CSV, triplets and pairs; every bad input names file and row."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from hacalib.data import (
    MISALIGNMENT_TYPES,
    Pair,
    Triplet,
    load_entailment_queries,
    load_videocon,
    to_pairs,
    to_triplets,
)
from hacalib.data.videocon import COLUMNS
from hacalib.errors import DataError

SUBSET = "videocon/videocon_llm_entailment_train_subset.csv"

GOOD = [
    ["msr-vtt/TrainValVideo/video1.mp4", "msr-vtt", "a man plays a guitar", "a man plays a violin", "abc", "train", "object"],
    ["msr-vtt/TrainValVideo/video1.mp4", "msr-vtt", "a man plays a guitar", "a man breaks a guitar", "abc", "train", "action"],
    ["vatex/v2.mp4", "vatex", "a dog runs and then jumps", "a dog jumps and then runs", "", "val", "flip"],
    ["tempo/v3.mp4", "tempo", "two girls sing", "three girls sing", "", "test", "counting"],
]


def write_csv(path: Path, rows: list[list[str]], header=COLUMNS) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_loads_rows_in_order(tmp_path: Path):
    rows = load_videocon(write_csv(tmp_path / "vc.csv", GOOD))
    assert [r.row for r in rows] == [0, 1, 2, 3]
    r = rows[2]
    assert (r.videopath, r.source, r.caption, r.neg_caption, r.youtube_key, r.split, r.misalignment) == tuple(GOOD[2])
    assert r.video_path is None and r.video == "vatex/v2.mp4"


def test_triplets_and_pairs(tmp_path: Path):
    rows = load_videocon(write_csv(tmp_path / "vc.csv", GOOD))
    triplets = to_triplets(rows)
    assert triplets[0] == Triplet("msr-vtt/TrainValVideo/video1.mp4", "a man plays a violin", "a man plays a guitar", "object", 0)
    pairs = to_pairs(rows)
    assert len(pairs) == 8
    assert pairs[:2] == [
        Pair("msr-vtt/TrainValVideo/video1.mp4", "a man plays a guitar", True, "object", 0),
        Pair("msr-vtt/TrainValVideo/video1.mp4", "a man plays a violin", False, "object", 0),
    ]
    # rows 0 and 1 share the true caption: deduped, its aligned pair appears once
    deduped = to_pairs(rows, dedupe=True)
    assert len(deduped) == 7
    assert sum(p.label for p in deduped) == 3 and sum(not p.label for p in deduped) == 4


def test_video_root(tmp_path: Path):
    csv_path = write_csv(tmp_path / "vc.csv", GOOD[2:3])
    videos = tmp_path / "videos"
    with pytest.raises(DataError, match=r"vc\.csv, row 0, key 'videopath': video not found: .*vatex/v2\.mp4"):
        load_videocon(csv_path, video_root=videos, check_videos=True)
    (videos / "vatex").mkdir(parents=True)
    (videos / "vatex" / "v2.mp4").write_bytes(b"x")
    [row] = load_videocon(csv_path, video_root=videos, check_videos=True)
    assert row.video_path == str(videos / "vatex" / "v2.mp4") == to_triplets([row])[0].video
    with pytest.raises(ValueError, match="video_root"):
        load_videocon(csv_path, check_videos=True)


def test_missing_column(tmp_path: Path):
    header = [c for c in COLUMNS if c != "neg_caption"]
    path = write_csv(tmp_path / "vc.csv", [r[:3] + r[4:] for r in GOOD], header=header)
    with pytest.raises(DataError, match=r"vc\.csv, key 'neg_caption': missing column"):
        load_videocon(path)


@pytest.mark.parametrize("col", ["caption", "neg_caption", "videopath"])
def test_empty_text(tmp_path: Path, col: str):
    bad = [list(r) for r in GOOD]
    bad[2][COLUMNS.index(col)] = "   "
    with pytest.raises(DataError, match=rf"vc\.csv, row 2, key '{col}': empty text"):
        load_videocon(write_csv(tmp_path / "vc.csv", bad))


def test_identical_contrast_caption(tmp_path: Path):
    bad = [list(r) for r in GOOD]
    bad[1][3] = bad[1][2]
    with pytest.raises(DataError, match=r"vc\.csv, row 1, key 'neg_caption': .*identical"):
        load_videocon(write_csv(tmp_path / "vc.csv", bad))


@pytest.mark.parametrize("value", ["Action", "event_order", ""])
def test_unknown_misalignment(tmp_path: Path, value: str):
    bad = [list(r) for r in GOOD]
    bad[3][6] = value
    with pytest.raises(DataError, match=r"vc\.csv, row 3, key 'misalignment': unknown misalignment type"):
        load_videocon(write_csv(tmp_path / "vc.csv", bad))


def test_every_known_type_loads(tmp_path: Path):
    rows = [["v.mp4", "s", f"cap {t}", f"neg {t}", "", "train", t] for t in MISALIGNMENT_TYPES]
    assert [r.misalignment for r in load_videocon(write_csv(tmp_path / "vc.csv", rows))] == list(MISALIGNMENT_TYPES)


def test_duplicate_rows(tmp_path: Path):
    path = write_csv(tmp_path / "vc.csv", GOOD + [GOOD[1], GOOD[3], GOOD[1]])
    with pytest.raises(DataError, match=r"vc\.csv, row 4: 3 repeated row\(s\); identical rows: 1, 4, 6; 3, 5"):
        load_videocon(path)
    assert [r.row for r in load_videocon(path, duplicates="drop")] == [0, 1, 2, 3]
    assert len(load_videocon(path, duplicates="keep")) == 7
    with pytest.raises(ValueError):
        load_videocon(path, duplicates="ignore")


def test_ragged_and_malformed_csv(tmp_path: Path):
    path = tmp_path / "vc.csv"
    path.write_text(",".join(COLUMNS) + "\n" + ",".join(GOOD[0]) + "\nv.mp4,s,cap,neg\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"vc\.csv, row 1: expected 7 fields, found 4"):
        load_videocon(path)
    path.write_text(",".join(COLUMNS) + '\nv.mp4,s,"unclosed caption,neg,,train,action\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"vc\.csv: malformed CSV"):
        load_videocon(path)
    path.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match=r"vc\.csv: empty file"):
        load_videocon(path)
    with pytest.raises(DataError, match=r"nope\.csv: file not found"):
        load_videocon(tmp_path / "nope.csv")


def test_entailment_queries(tmp_path: Path):
    path = tmp_path / "q.csv"
    path.write_text("videopath,text\na.mp4,a cat sleeps\na.mp4,\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"q\.csv, row 1, key 'text': empty text"):
        load_entailment_queries(path)


# ----------------------------------------------------------------------------- real samples


def test_real_sample_shipped_with_hacalib():
    """The 2,400 real rows every clone has (hacalib/samples): the loaders, the repeats, triplets and pairs."""
    from hacalib.samples import VIDEOCON_SAMPLE

    with pytest.raises(DataError, match=r"row 2335: 1 repeated row\(s\); identical rows: 2073, 2335"):
        load_videocon(VIDEOCON_SAMPLE)
    rows = load_videocon(VIDEOCON_SAMPLE, duplicates="keep")
    assert len(rows) == 2400
    assert {r.misalignment for r in rows} == {"action", "flip"}
    assert {r.source for r in rows} == {"msr-vtt", "vatex", "tempo"}
    assert len(load_videocon(VIDEOCON_SAMPLE, duplicates="drop")) == 2399
    assert len(to_triplets(rows)) == 2400 and len(to_pairs(rows)) == 2 * 2400


@pytest.mark.fixtures
def test_real_subset(shared_fixtures: Path):
    """The whole 16,856-row subset the sample was cut from (team checkout only)."""
    path = shared_fixtures / SUBSET
    # The public subset repeats two rows exactly (rows 1898/13739 and 2073/2335).
    with pytest.raises(DataError, match=r"row 13739: 2 repeated row\(s\); identical rows: 1898, 13739; 2073, 2335"):
        load_videocon(path)
    rows = load_videocon(path, duplicates="keep")
    assert len(rows) == 16856
    assert {r.misalignment for r in rows} == {"action", "flip"}
    assert {r.source for r in rows} == {"msr-vtt", "vatex", "tempo"}
    assert len(load_videocon(path, duplicates="drop")) == 16854
    assert len(to_triplets(rows)) == 16856 and len(to_pairs(rows)) == 2 * 16856


@pytest.mark.fixtures
def test_real_example_csv_is_the_inference_format(shared_fixtures: Path):
    path = shared_fixtures / "videocon/example/test.csv"
    with pytest.raises(DataError, match=r"test\.csv, key 'source': missing column"):
        load_videocon(path)
    queries = load_entailment_queries(path)
    assert [q.text.split()[1] for q in queries] == ["soccer", "basketball"]


def test_csv_encoding_blank_lines_and_repeated_columns(tmp_path: Path):
    path = tmp_path / "vc.csv"
    body = ",".join(COLUMNS) + "\n" + ",".join(GOOD[0]) + "\n\n" + ",".join(GOOD[2]) + "\n\n"
    path.write_text("\ufeff" + body, encoding="utf-8")  # a byte-order mark (Excel) and blank lines
    assert [r.row for r in load_videocon(path)] == [0, 1]  # blank lines are not rows, as in pandas
    path.write_bytes(body.replace("a dog", "a d\xf6g").encode("latin-1"))
    with pytest.raises(DataError, match=r"vc\.csv: not UTF-8 text"):
        load_videocon(path)
    path.write_text(",".join(COLUMNS + ("caption",)) + "\n" + ",".join(GOOD[0] + ["x"]) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"vc\.csv, key 'caption': repeated column name"):
        load_videocon(path)
