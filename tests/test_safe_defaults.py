"""Safe by default: no stale or overwritten data, and every command-line mistake caught before any work.

One section per finding of the "Safe by default" issue; each test failed on the code before it (commit 776616f)
and passes now. The tests use only what both versions share: the `haca` command, `build_world`, `atomic_path`.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from hacalib.errors import DataError
from hacalib.io import atomic_path, write_text
from hacalib.toyworld import build_world

HACA = [sys.executable, "-m", "hacalib.cli"]


def _digests(root: Path) -> dict[str, str]:
    """sha256 of every file under a world (the manifest without its timing), hidden files included."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            rel = str(path.relative_to(root))
            if rel == "toyworld.json":
                manifest = json.loads(path.read_text())
                manifest.pop("generation_seconds", None)
                out[rel] = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
            else:
                out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> dict[int, dict[str, str]]:
    """Every file's sha256 of a clean smoke build of seeds 5 and 6."""
    out = {}
    for seed in (5, 6):
        root = tmp_path_factory.mktemp(f"clean{seed}") / "w"
        build_world(root, size="smoke", seed=seed)
        out[seed] = _digests(root)
    assert out[5] != out[6]
    return out


def _run(*args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*HACA, *args], capture_output=True, text=True, timeout=timeout, **kw)


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    # argparse's usage lines and the notebook kernel's own log lines are not ours
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith(("usage:", " ", "[IPKernelApp]"))]
    assert len(lines) == 1, proc.stderr
    return lines[0]


# ----------------------------------------------------------------------------- 1. stale world reported complete


@pytest.mark.slow
def test_interrupted_rebuild_with_another_seed_is_not_trusted(tmp_path, clean, monkeypatch):
    import hacalib.toyworld.build as build

    root = tmp_path / "w"
    build_world(root, size="smoke", seed=5)
    real, written = build.write_mp4, []

    def interrupted(*args, **kwargs):  # Ctrl-C after half the videos of the seed-6 world
        if len(written) == 60:
            raise KeyboardInterrupt
        written.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(build, "write_mp4", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_world(root, size="smoke", seed=6)
    monkeypatch.setattr(build, "write_mp4", real)
    build_world(root, size="smoke", seed=5)
    assert _digests(root) == clean[5]


# A toyworld command whose every video write takes a few milliseconds longer: a smoke build takes ~1 s on a
# 2-core machine and less on a faster one, so a kill timed in seconds could land after the build has finished.
# Pacing the real process keeps the kill inside the build on any machine; what is killed is still `haca toyworld`.
_PACED_TOYWORLD = """
import sys, time
import hacalib.toyworld.build as build
real = build.write_mp4
def paced(*args, **kwargs):
    time.sleep(0.02)
    return real(*args, **kwargs)
build.write_mp4 = paced
from hacalib.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("kill_after_videos, then_seed", [(1, 5), (40, 5), (100, 6)])
def test_a_killed_toyworld_command_then_either_seed_gives_a_clean_world(tmp_path, clean, kill_after_videos, then_seed):
    root = tmp_path / "w"
    assert _run("toyworld", "--out", str(root), "--size", "smoke", "--seed", "5").returncode == 0
    started = time.time_ns()
    proc = subprocess.Popen([sys.executable, "-c", _PACED_TOYWORLD, "toyworld", "--out", str(root), "--size", "smoke",
                             "--seed", "6"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120

    def replaced() -> int:  # videos the seed-6 build has written so far
        return sum(v.stat().st_mtime_ns > started for v in root.rglob("*.mp4") if v.exists())

    while time.time() < deadline and proc.poll() is None and replaced() < kill_after_videos:
        time.sleep(0.005)
    assert proc.poll() is None, "the build finished before the kill: nothing was tested"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _run("toyworld", "--out", str(root), "--size", "smoke", "--seed", str(then_seed)).returncode == 0
    assert _digests(root) == clean[then_seed]  # no stale file, no hidden temporary left behind


# ----------------------------------------------------------------------------- 2. a real data root overwritten


def test_a_real_data_root_is_refused_and_left_alone(tmp_path):
    root = tmp_path / "data"
    csv = root / "videocon" / "videocon_llm_entailment.csv"
    csv.parent.mkdir(parents=True)
    csv.write_text("videopath,source,caption,neg_caption,youtube_key,split,misalignment\n" + "v.mp4,x,a,b,k,train,action\n" * 3)
    before = csv.read_bytes()
    proc = _run("toyworld", "--out", str(root), "--size", "smoke")
    assert "not a toy world of ours" in _one_line_error(proc)
    assert csv.read_bytes() == before and sorted(p.name for p in root.rglob("*")) == ["videocon", "videocon_llm_entailment.csv"]


def test_a_user_file_with_a_world_name_is_not_overwritten(tmp_path):
    root = tmp_path / "mine"
    root.mkdir()
    (root / "scenes.jsonl").write_text("my own notes\n")
    with pytest.raises(DataError, match="not a toy world of ours"):
        build_world(root, size="smoke", seed=0)
    assert (root / "scenes.jsonl").read_text() == "my own notes\n"


def test_force_writes_beside_other_files_and_deletes_nothing_of_theirs(tmp_path):
    root = tmp_path / "mine"
    root.mkdir()
    (root / "notes.txt").write_text("keep me\n")
    build_world(root, size="smoke", seed=0, force=True)
    assert (root / "notes.txt").read_text() == "keep me\n" and (root / "toyworld.json").is_file()
    build_world(root, size="smoke", seed=1)  # another seed over it: still ours, the user's file stays
    assert (root / "notes.txt").read_text() == "keep me\n"


def test_an_empty_out_is_an_error(tmp_path):
    proc = _run("toyworld", "--out", "", "--size", "smoke", cwd=tmp_path)
    assert "output folder is empty" in _one_line_error(proc)
    assert not any(tmp_path.iterdir())


# ----------------------------------------------------------------------------- 3. completeness by existence only


def test_a_truncated_world_video_is_rebuilt(tmp_path, clean):
    root = tmp_path / "w"
    build_world(root, size="smoke", seed=5)
    video = next((root / "velociti" / "videos").glob("*.mp4"))
    video.write_bytes(b"")
    build_world(root, size="smoke", seed=5)
    assert _digests(root) == clean[5]


def test_a_corrupt_video_outside_a_world_is_named_before_any_model_call(tmp_path):
    import numpy as np

    from hacalib.data.integrity import check_videos
    from hacalib.data.video import write_mp4

    good, bad = tmp_path / "good.mp4", tmp_path / "bad.mp4"
    write_mp4(good, np.zeros((16, 32, 32, 3), np.uint8))
    bad.write_bytes(good.read_bytes()[:300])  # cut short
    check_videos([(good, "q.json", 0, "video_name")])
    with pytest.raises(DataError, match=r"q\.json, row 1, key 'video_name': .*bad\.mp4"):
        check_videos([(good, "q.json", 0, "video_name"), (bad, "q.json", 1, "video_name")])


# ----------------------------------------------------------------------------- 4, 5. arguments checked before work


@pytest.fixture
def project(tmp_path) -> Path:
    """A project folder whose only notebook does nothing: an argument that is not refused would run it."""
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    # defaults as the real notebooks declare them: seeds None means the preset's
    cell = nbformat.v4.new_code_cell('preset = "toy"\ndata_root = ""\nseeds = None\nsmoke = True\ncache_dir = "c"\n'
                                     'out_dir = "f"\nseed = 0\n')
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell("assert seeds is None or seed in seeds, (seed, seeds)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "notebooks" / "02_finetune.ipynb")
    return root


@pytest.mark.parametrize("args, says", [
    (["--seeds", ""], "expected comma-separated non-negative integers"),
    (["--seeds", "-1"], "expected comma-separated non-negative integers"),
    (["--seeds", "a,b"], "expected comma-separated non-negative integers"),
    (["--seeds", "1,1"], "a seed is repeated"),
    (["--only", "99"], "matches 0 notebooks"),
    (["--data-root", "/nonexistent"], "is for a paper preset"),
    (["--preset", "videollava-7b"], "needs --data-root"),
    (["--preset", "videollava-7b", "--data-root", "/nonexistent"], "is not a folder"),
])
def test_reproduce_arguments_are_refused_in_a_second(project, args, says):
    t0 = time.perf_counter()
    proc = _run("reproduce", "--project-root", str(project), *args)
    assert says in _one_line_error(proc)
    assert time.perf_counter() - t0 < 30  # refused before any work (no world, no pretraining)
    assert not (project / "runs").exists() and not (project / "cache").exists()


@pytest.mark.parametrize("args, says", [
    (["--seed", "-2"], "expected a non-negative integer"),
    (["--seed", "x"], "expected a non-negative integer"),
])
def test_toyworld_arguments_are_refused(tmp_path, args, says):
    assert says in _one_line_error(_run("toyworld", "--out", str(tmp_path / "w"), *args))


def test_an_out_that_is_a_file_or_cannot_be_made_is_one_line(tmp_path):
    afile = tmp_path / "f.txt"
    afile.write_text("x")
    assert "not a folder" in _one_line_error(_run("toyworld", "--out", str(afile), "--size", "smoke"))
    assert "/proc/haca-nope" in _one_line_error(_run("toyworld", "--out", "/proc/haca-nope/w", "--size", "smoke"))


# ----------------------------------------------------------------------------- 6. the run shown in detail


@pytest.mark.slow
def test_the_detail_seed_follows_seeds(project):
    proc = _run("reproduce", "--project-root", str(project), "--smoke", "--seeds", "11,12,13", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ran = nbformat.read(project / "runs" / "smoke" / "notebooks" / "02_finetune.ipynb", as_version=4)
    injected = next(c for c in ran.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert "seed = 11" in injected.source


def test_a_failing_notebook_is_one_line_naming_its_executed_copy(project):
    nb = nbformat.read(project / "notebooks" / "02_finetune.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("raise KeyError(('haca', 0))"))
    nbformat.write(nb, project / "notebooks" / "02_finetune.ipynb")
    line = _one_line_error(_run("reproduce", "--project-root", str(project), "--smoke", timeout=300))
    assert "notebook 02_finetune failed" in line and "KeyError" in line
    assert (project / "runs" / "failed" / "02_finetune.failed.ipynb").is_file()


# ----------------------------------------------------------------------------- 7. temporaries and permissions


def test_a_killed_writers_temporaries_are_removed_by_the_next_write(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".table.csv.{int(dead.stdout)}-abc12345.tmp"
    live = tmp_path / f".table.csv.{os.getpid()}-def45678.tmp"  # a writer that still runs (this one)
    stale.write_text("half")
    live.write_text("busy")
    write_text(tmp_path / "table.csv", "a,b\n")
    assert not stale.exists() and live.exists()
    assert (tmp_path / "table.csv").read_text() == "a,b\n"


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "t.md", "x")
        with atomic_path(tmp_path / "fig.png") as tmp:
            tmp.write_bytes(b"png")
        from hacalib.io import atomic_dir

        with atomic_dir(tmp_path / "model") as d:
            (d / "w.bin").write_bytes(b"0")
    finally:
        os.umask(old)
    assert oct((tmp_path / "t.md").stat().st_mode & 0o777) == "0o644"
    assert oct((tmp_path / "fig.png").stat().st_mode & 0o777) == "0o644"
    assert oct((tmp_path / "model").stat().st_mode & 0o777) == "0o755"
