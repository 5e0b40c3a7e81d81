"""The paper preset's rehearsal: its whole path on a CPU, with the real Llama-2 vocabulary and real files.

Skipped without ../shared/fixtures (the Llama-2 tokenizer may not ship with the project). What it pins down:
the Yes/No ids and the `No,` answer position under the real vocabulary, the `<video>` expansion to 2,056 tokens,
the real processor on the real clip, and `haca reproduce --preset videollava-7b --smoke` from the hub cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hacalib import prompts
from hacalib.models import answer_token_ids, encode_answer, load_model, num_video_tokens, preprocess_videos
from hacalib.rehearsal import CLIP, build_rehearsal, env

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rehearsal(shared_fixtures, tmp_path_factory):
    return build_rehearsal(shared_fixtures, tmp_path_factory.mktemp("rehearsal"))


def test_real_vocabulary_answer_position_and_video_expansion(rehearsal, shared_fixtures):
    from hacalib.data.video import read_video

    model, processor = load_model(rehearsal["snapshot"], dtype="float32")
    tok = processor.tokenizer
    assert tok.convert_tokens_to_ids(["<image>", "<video>", "<pad>"]) == [32000, 32001, 32002]
    assert answer_token_ids(tok) == (3869, 1939)  # "▁Yes", "▁No": what P(yes) reads
    assert num_video_tokens(processor, 8) == 2056  # 8 frames x (16 x 16 patches + CLS)
    prompt = prompts.VIDEO_LLAVA.entail_prompt("A soccer team plays on a field.")
    enc = encode_answer(tok, prompt, "No, a basketball team plays on a court.", 2056)
    ids, labels = enc["input_ids"], enc["labels"]
    answer_at = next(i for i, x in enumerate(labels) if x != -100)
    assert ids[0] == 1 and ids.count(32001) == 2056  # BOS, then the expanded video
    assert ids[answer_at - 1] == tok.convert_tokens_to_ids(":")  # right after "ASSISTANT:"
    assert ids[answer_at:answer_at + 2] == [1939, 29892] and ids[-1] == 2  # "▁No" ",", ..., EOS
    pixels = preprocess_videos(processor, [read_video(shared_fixtures / CLIP, num_frames=8)])  # 1280x720 original
    assert tuple(pixels.shape) == (1, 8, 3, 224, 224)
    assert model.config.text_config.vocab_size == 32064 and model.config.vision_feature_layer == -2


def test_held_out_rows_follow_the_presets_duplicates_choice(rehearsal):
    """The real VideoCon CSV repeats rows; the paper preset drops exact repeats for evaluation as for training."""
    from hacalib.data.layout import DataRoot
    from hacalib.errors import DataError
    from hacalib.presets import preset
    from hacalib.scoring.evaluate import heldout_rows

    root = DataRoot(rehearsal["data_root"])
    with pytest.raises(DataError, match="repeated row"):
        heldout_rows(root)
    assert preset("videollava-7b").duplicates == "drop"
    assert len(heldout_rows(root, duplicates="drop")) == 6 and len(heldout_rows(root, duplicates="keep")) == 7


@pytest.mark.slow
def test_paper_preset_runs_end_to_end_from_the_hub_cache(rehearsal, tmp_path):
    """Every notebook of `haca reproduce --preset videollava-7b --smoke`, offline, in a scratch project folder."""
    shutil.copytree(PROJECT_ROOT / "notebooks", tmp_path / "notebooks",
                    ignore=shutil.ignore_patterns("*.failed.ipynb", ".ipynb_checkpoints"))
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from hacalib.cli import main; sys.exit(main(sys.argv[1:]))",
         "reproduce", "--preset", "videollava-7b", "--smoke", "--seeds", "0", "--data-root",
         str(rehearsal["data_root"]), "--project-root", str(tmp_path)],
        env={**os.environ, **env(rehearsal)}, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("[reproduce] ")]
    from hacalib.reproduce import NOTEBOOKS

    assert len(lines) == len(NOTEBOOKS) + 1, proc.stdout  # every notebook, then where the outputs are
    figures = tmp_path / "runs" / "smoke" / "figures"
    for name in ("01_findings", "03_table1_velociti", "04_ssv2_retrieval", "05_table2", "06_mask_ratio", "07_findings",
                 "00_findings"):
        assert (figures / f"{name}.md").is_file(), name
    # the model the notebooks loaded is the tiny one in the hub cache, at the pinned revision
    assert "d814f26332051e31c43352e8c1c0ef230ed6fb5d" in (figures / "03_table1_velociti.provenance.json").read_text()


@pytest.mark.slow
def test_videochat2_paper_preset_runs_end_to_end_from_a_converted_folder(rehearsal, tmp_path):
    """Every notebook of `haca reproduce --preset videochat2-7b --smoke`, on the tiny VideoChat2 that carries the real
    Mistral vocabulary and the paper geometry (96 video tokens per video), from its folder (`--model-path`)."""
    shutil.copytree(PROJECT_ROOT / "notebooks", tmp_path / "notebooks",
                    ignore=shutil.ignore_patterns("*.failed.ipynb", ".ipynb_checkpoints"))
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from hacalib.cli import main; sys.exit(main(sys.argv[1:]))",
         "reproduce", "--preset", "videochat2-7b", "--smoke", "--seeds", "0", "--data-root",
         str(rehearsal["data_root"]), "--model-path", str(rehearsal["videochat2"]), "--project-root", str(tmp_path)],
        env={**os.environ, **env(rehearsal)}, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    figures = tmp_path / "runs" / "smoke" / "figures"
    table = (figures / "03_table1_classic_vle.csv").read_text()
    assert table.count("VideoChat2,") == 4 and "Video-LLaVA" not in table  # its four rows, no other family's
    record = json.loads((figures / "03_table1_velociti.provenance.json").read_text())
    assert record["config"]["families"] == ["videochat2"]
    assert record["config"]["model_path"] == str(rehearsal["videochat2"].resolve())
