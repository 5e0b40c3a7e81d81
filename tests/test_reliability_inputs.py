"""Bad inputs through the entry points a user calls (finetune, the evaluation functions, `haca score-retrieval`).

Each case copies the smoke toy world, breaks one thing the way a messy download would, and checks that the run
stops with a `DataError` naming the file and the row/key, or (where the user asked for it) skips and records the
count. Never a silently shorter table. The loaders' own unit tests are in tests/test_data_*.py.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hacalib.cli import main as haca
from hacalib.config import ModelConfig, TrainConfig
from hacalib.data.layout import DataRoot
from hacalib.data.video import write_mp4
from hacalib.errors import DataError
from hacalib.models import build_toy_model, save_model
from hacalib.scoring import evaluate
from hacalib.scoring.pyes import p_yes
from hacalib.scoring.requests import ScoreRequest
from hacalib.toyworld import build_world, word_class
from hacalib.training.finetune import MARKER, finetune
from hacalib.training.masking import WordClassTagger
from hacalib.training.pretrain import toy_vocabulary

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

CFG = TrainConfig(max_steps=10, batch_size=4, warmup_steps=1, lr=2e-3, log_every=1, checkpoint_every=1000)
MODEL_CFG = ModelConfig(preset="toy", dtype="float32", lora_r=4, lora_alpha=8, lora_dropout=0.0)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world")
    build_world(out, size="smoke", seed=0)
    return out


@pytest.fixture(scope="module")
def base(world, tmp_path_factory) -> Path:
    """A randomly initialised toy Video-LLaVA on the world's vocabulary (training quality is not the point here)."""
    model, processor = build_toy_model(toy_vocabulary(world), seed=0)
    return save_model(model, processor, tmp_path_factory.mktemp("base") / "toy")


@pytest.fixture(scope="module")
def model(base):
    from hacalib.models import load_model

    return load_model(base, dtype="float32")


@pytest.fixture
def root(world, tmp_path) -> Path:
    """A private copy of the world, free to break."""
    out = tmp_path / "root"
    shutil.copytree(world, out)
    return out


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _write_csv(path: Path, rows: list[dict], columns: list[str] | None = None) -> None:
    columns = columns or list(rows[0])
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def _finetune(base: Path, root: Path, out: Path, **kw):
    return finetune(base, root, CFG, MODEL_CFG, out, tagger=WordClassTagger(word_class), progress=False, **kw)


def _assert_nothing_written(out: Path) -> None:
    assert not out.exists(), "a failed run must leave no adapter folder"


# ----------------------------------------------------------------------------- training data (finetune)


def _break_videocon(root: Path, how: str) -> tuple[int | None, str | None, str]:
    """Break the VideoCon CSV in one way; returns the (row, key, message) the error must carry."""
    csv_path = DataRoot(root).videocon_csv
    rows = _read_csv(csv_path)
    columns = list(rows[0])
    row = 5
    if how == "empty caption":
        rows[row]["caption"] = "   "
        expect = (row, "caption", "empty text")
    elif how == "missing column":
        columns.remove("misalignment")
        expect = (None, "misalignment", "missing column(s) ['misalignment']")
    elif how == "unknown misalignment":
        rows[row]["misalignment"] = "colour"
        expect = (row, "misalignment", "unknown misalignment type 'colour'")
    elif how == "duplicate row":
        rows.insert(row + 1, dict(rows[row]))
        expect = (row + 1, None, "1 repeated row(s); identical rows: 5, 6")
    elif how == "missing video":
        (DataRoot(root).videocon_videos / rows[row]["videopath"]).unlink()
        expect = (row, "videopath", "(1 of 35 'train' rows lack their video; missing_videos='skip' trains without")
    else:
        raise AssertionError(how)
    _write_csv(csv_path, rows, columns)
    return expect


@pytest.mark.parametrize("how", ["empty caption", "missing column", "unknown misalignment", "duplicate row",
                                 "missing video"])
def test_bad_training_csv_stops_finetune_before_the_model_loads(root, tmp_path, how, monkeypatch):
    import hacalib.training.finetune as ft

    row, key, message = _break_videocon(root, how)
    # the data is checked first: a bad row must not cost a (7B) model load
    monkeypatch.setattr(ft, "load_model", lambda *a, **k: pytest.fail("model loaded before the data was checked"))
    out = tmp_path / "run"
    with pytest.raises(DataError) as err:
        _finetune(Path("no-model-needed"), root, out)
    assert err.value.path.endswith("videocon/videocon_llm_entailment.csv")
    assert (err.value.row, err.value.key) == (row, key)
    assert message in str(err.value)
    _assert_nothing_written(out)


def test_rows_skipped_on_request_are_counted_in_the_run_record(root, base, tmp_path):
    """The two skip policies finetune offers: exact duplicate rows (drop) and rows whose video is absent (skip)."""
    _break_videocon(root, "duplicate row")
    rows = _read_csv(DataRoot(root).videocon_csv)
    for r in (rows[10], rows[20]):
        (DataRoot(root).videocon_videos / r["videopath"]).unlink()
    out = _finetune(base, root, tmp_path / "run", duplicates="drop", missing_videos="skip")
    info = json.loads((out / MARKER).read_text())
    assert (info["duplicates"], info["missing_videos"]) == ("drop", "skip")
    assert info["duplicate_rows_dropped"] == 1 and info["rows_skipped_missing_video"] == 2
    assert info["videos"] == 35 - 2  # the smoke world's train videos less the two absent ones
    # the videos come back: the same call is a different run (its key names the absent videos), not a stale reuse
    videos = DataRoot(root).videocon_videos
    for r in (rows[10], rows[20]):
        shutil.copy(videos / rows[0]["videopath"], videos / r["videopath"])
    import hacalib.training.finetune as ft

    key_now = ft.cache_key(CFG, MODEL_CFG, base, DataRoot(root), duplicates="drop", missing_videos="skip")
    assert key_now != info["cache_key"]


def test_real_videocon_sample_has_exact_duplicates():
    """Why finetune offers duplicates='drop': the public VideoCon data itself repeats rows."""
    from hacalib.data import load_videocon
    from hacalib.samples import VIDEOCON_SAMPLE

    with pytest.raises(DataError, match=r"1 repeated row\(s\); identical rows: 2073, 2335"):
        load_videocon(VIDEOCON_SAMPLE)
    assert len(load_videocon(VIDEOCON_SAMPLE, duplicates="keep")) - len(load_videocon(VIDEOCON_SAMPLE,
                                                                                     duplicates="drop")) == 1


@pytest.mark.parametrize("world_manifest", [True, False], ids=["toy world (manifest check)", "other data (decode check)"])
@pytest.mark.parametrize("damage", ["garbage bytes", "empty file", "4 frames"])
def test_damaged_training_video_stops_finetune_before_training(root, base, tmp_path, damage, world_manifest):
    """Caught before the model is loaded (not at the step that first reads the video), naming the CSV row and video."""
    rows = _read_csv(DataRoot(root).videocon_csv)
    video = DataRoot(root).videocon_videos / rows[3]["videopath"]
    if damage == "garbage bytes":
        video.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
        message = "cannot decode video"
    elif damage == "empty file":
        video.write_bytes(b"")
        message = "video file is empty"
    else:
        write_mp4(video, np.zeros((4, 32, 32, 3), np.uint8))
        message = "video has 4 frames, fewer than the 8 requested"
    if world_manifest:
        message = "differs from the toy world's manifest"
    else:  # the same files outside a toy world: decoded, not hash-checked
        (root / "toyworld.json").unlink()
    out = tmp_path / "run"
    with pytest.raises(DataError, match=message) as err:
        _finetune(base, root, out)
    assert Path(err.value.path) == DataRoot(root).videocon_csv and (err.value.row, err.value.key) == (3, "videopath")
    assert str(video) in str(err.value)
    _assert_nothing_written(out)


# ----------------------------------------------------------------------------- evaluation


def test_velociti_missing_neg_names_file_and_key(root):
    path = DataRoot(root).velociti_test("agent_bind")
    data = json.loads(path.read_text())
    vid = next(iter(data))
    event = next(iter(data[vid]))
    del data[vid][event]["neg"]
    path.write_text(json.dumps(data))
    with pytest.raises(DataError) as err:
        evaluate.velociti_items(None, None, DataRoot(root))  # fails in the loader, before any model is needed
    assert err.value.path == str(path) and err.value.key == f"{vid}/{event}/neg"
    assert "missing key" in str(err.value)


def test_velociti_missing_video_is_found_before_scoring(root, model):
    # toy VELOCITI tests share videos: the first test (agent_iden) to use a missing one is named
    items = json.loads(DataRoot(root).velociti_test("agent_iden").read_text())
    vid = next(iter(items))
    (DataRoot(root).velociti_videos / f"{vid}.mp4").unlink()
    with pytest.raises(DataError, match="video not found") as err:
        evaluate.velociti_items(*model, DataRoot(root))
    assert err.value.path == str(DataRoot(root).velociti_test("agent_iden"))
    assert err.value.key.startswith(f"{vid}/")


def test_videocon_heldout_missing_video_names_the_row(root, model):
    rows = _read_csv(DataRoot(root).videocon_csv)
    row = next(i for i, r in enumerate(rows) if r["split"] == "test")
    (DataRoot(root).videocon_videos / rows[row]["videopath"]).unlink()
    with pytest.raises(DataError, match="video not found") as err:
        evaluate.videocon_pairs(*model, DataRoot(root))
    assert (err.value.row, err.value.key) == (row, "videopath")


def test_ssv2_missing_video_names_the_matrix_row(root, model):
    matrix = DataRoot(root).ssv2_matrix("toy")
    rows = _read_csv(matrix)
    (DataRoot(root).ssv2_videos / rows[7]["videopath"]).unlink()
    first = next(i for i, r in enumerate(rows) if r["videopath"] == rows[7]["videopath"])
    with pytest.raises(DataError, match="video not found") as err:
        evaluate.retrieval_scores(*model, DataRoot(root), "toy")
    assert (err.value.path, err.value.row, err.value.key) == (str(matrix), first, "videopath")


def test_msrvtt_qa_missing_video_names_the_question(root, model):
    qpath = DataRoot(root).msrvtt_qa_questions
    questions = json.loads(qpath.read_text())
    (DataRoot(root).msrvtt_qa_videos / f"{questions[2]['video_name']}.mp4").unlink()
    first = next(i for i, q in enumerate(questions) if q["video_name"] == questions[2]["video_name"])
    with pytest.raises(DataError, match="video not found") as err:
        evaluate.qa_answers(*model, DataRoot(root))
    assert (err.value.path, err.value.row, err.value.key) == (str(qpath), first, "video_name")


def test_corrupt_and_short_videos_stop_scoring_naming_the_file(root, model, tmp_path):
    corrupt, short = tmp_path / "corrupt.mp4", tmp_path / "short.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(500))  # an mp4 header and nothing else
    write_mp4(short, np.zeros((3, 32, 32, 3), np.uint8))
    good = str(next(DataRoot(root).velociti_videos.glob("*.mp4")))
    for bad, message in ((corrupt, "cannot decode video"), (short, "video has 3 frames, fewer than the 8")):
        with pytest.raises(DataError, match=message) as err:
            p_yes(*model, [ScoreRequest(good, "a red circle"), ScoreRequest(str(bad), "a red circle")])
        assert Path(err.value.path) == bad


def test_empty_caption_is_refused_by_the_scorer(model):
    frames = np.zeros((8, 32, 32, 3), np.uint8)
    for caption in ("", "  "):
        with pytest.raises(ValueError, match="request 1 .* has an empty caption"):
            p_yes(*model, [ScoreRequest(frames, "a red circle", "v"), ScoreRequest(frames, caption, "v")])


# ----------------------------------------------------------------------------- haca score-retrieval


def _scores_file(root: Path, path: Path, edit=None) -> Path:
    rows = _read_csv(DataRoot(root).ssv2_matrix("toy"))
    lines = [[r["videopath"], r["caption"], f"{0.5 + 0.01 * (i % 7):.3f}", "0", "0"] for i, r in enumerate(rows)]
    if edit:
        lines = edit(lines)
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(lines)
    return path


@pytest.mark.parametrize("edit,where,message", [
    (lambda ls: ls[:-3], "scores.csv", "3 of 243 (query, video) pairs missing"),
    (lambda ls: ls + [ls[4]], "scores.csv, row 243", "repeated (query, video) pairs at rows 4, 243"),
    (lambda ls: [*ls[:9], [ls[9][0], ls[9][1], "nan", "0", "0"], *ls[10:]], "scores.csv, row 9, key 'entailment'",
     "entailment score is not finite"),
    (lambda ls: [*ls[:9], [ls[9][0], "   ", *ls[9][2:]], *ls[10:]], "scores.csv, row 9, key 'caption'", "empty text"),
])
def test_score_retrieval_refuses_incomplete_scores(root, tmp_path, capsys, edit, where, message):
    scores = _scores_file(root, tmp_path / "scores.csv", edit)
    assert haca(["score-retrieval", "--matrix", str(DataRoot(root).ssv2_matrix("toy")), "--scores", str(scores)]) == 2
    err = capsys.readouterr().err
    assert where in err and message in err


@pytest.mark.parametrize("how,where,message", [
    ("missing column", "eval_ssv2_toy.csv, key 'match'", "missing column(s) ['match']"),
    ("duplicate pair", "eval_ssv2_toy.csv, row 243", "repeated (query, video) pairs at rows 0, 243"),
    ("missing pair", "eval_ssv2_toy.csv", "1 of 243 (query, video) pairs missing"),
])
def test_score_retrieval_refuses_a_bad_matrix(root, tmp_path, capsys, how, where, message):
    matrix = DataRoot(root).ssv2_matrix("toy")
    scores = _scores_file(root, tmp_path / "scores.csv")
    rows = _read_csv(matrix)
    columns = list(rows[0])
    if how == "missing column":
        columns.remove("match")
    elif how == "duplicate pair":
        rows.append(dict(rows[0]))
    else:
        rows = rows[:-1]
    _write_csv(matrix, rows, columns)
    assert haca(["score-retrieval", "--matrix", str(matrix), "--scores", str(scores)]) == 2
    err = capsys.readouterr().err
    assert where in err and message in err


def test_score_retrieval_accepts_the_intact_files(root, tmp_path, capsys):
    """The control for the cases above: the same files, unbroken, give a result."""
    scores = _scores_file(root, tmp_path / "scores.csv")
    assert haca(["score-retrieval", "--matrix", str(DataRoot(root).ssv2_matrix("toy")), "--scores", str(scores)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n_queries"] * result["n_videos"] == 243
