"""Issue 30, "never replace what is not ours": a command that writes a folder refuses a non-empty folder it did not
make, and a folder it made (its marker inside) it may replace. Nothing outside the scratch folder changes."""

import hashlib
import json
import subprocess
import sys

import pytest

from hacalib.errors import UsageError
from hacalib.io import OWNER_MARKER, atomic_dir


def _tree(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _user_folder(tmp_path):
    out = tmp_path / "models"
    (out / "other-model").mkdir(parents=True)
    (out / "README").write_text("my notes")
    (out / "other-model" / "config.json").write_text("{}")
    return out


def test_atomic_dir_refuses_a_folder_it_did_not_make(tmp_path):
    out = _user_folder(tmp_path)
    before = _tree(tmp_path)
    with pytest.raises(UsageError, match=r"models: holds files hacalib did not write \(README, other-model\)"):
        with atomic_dir(out, only_ours=True) as tmp:
            (tmp / "weights").write_text("x")
    assert _tree(tmp_path) == before


def test_a_folder_it_made_is_replaced(tmp_path):
    out = tmp_path / "converted"
    for content in ("first", "second"):
        with atomic_dir(out, only_ours=True) as tmp:
            (tmp / "weights").write_text(content)
    assert (out / "weights").read_text() == "second" and (out / OWNER_MARKER).is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    with atomic_dir(empty, only_ours=True) as tmp:
        (tmp / "weights").write_text("x")
    assert (empty / "weights").is_file()


def test_convert_videochat2_keeps_the_users_folder(tmp_path):
    out = _user_folder(tmp_path)
    before = _tree(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "hacalib.cli", "convert-videochat2", "--stage1", "s1.pth",
                           "--stage2", "s2.pth", "--llm", str(tmp_path / "llm"), "--out", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "hacalib did not write" in proc.stderr and str(out) in proc.stderr
    assert _tree(tmp_path) == before


def test_convert_videochat2_with_an_llm_folder_that_is_not_a_model_is_one_line(tmp_path):
    llm = tmp_path / "llm"
    llm.mkdir()
    (llm / "config.json").write_text(json.dumps({"hello": "world"}))
    stage = tmp_path / "s1.pth"
    import torch

    torch.save({"model": {}}, stage)
    proc = subprocess.run([sys.executable, "-m", "hacalib.cli", "convert-videochat2", "--stage1", str(stage),
                           "--stage2", str(stage), "--llm", str(llm), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and str(llm) in proc.stderr, proc.stderr
