"""Every notebook under notebooks/ runs end to end in smoke mode under nbval.

The committed notebooks are never executed in place: papermill injects smoke parameters into copies in a temp
folder (with a shared cache, so the notebooks reuse each other's training runs as in `haca reproduce`), and
nbval (lax mode: every cell must run; cells marked `# NBVAL_CHECK_OUTPUT` must reproduce their stored output)
executes the copies in order.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import papermill as pm
import pytest

from hacalib.reproduce import ReproduceConfig, notebook_parameters, select_notebooks

PROJECT_ROOT = Path(__file__).resolve().parents[1]

NOTEBOOKS = select_notebooks(PROJECT_ROOT / "notebooks")


@pytest.mark.slow
@pytest.mark.skipif(not NOTEBOOKS, reason="no notebooks yet")
def test_notebooks_run_in_smoke_mode_under_nbval(tmp_path):
    cfg = ReproduceConfig(project_root=tmp_path, smoke=True,
                          fixtures_dir=str(PROJECT_ROOT.parent / "shared" / "fixtures"))
    # absolute paths: the copies must write under tmp_path whatever folder the kernel starts in
    params = {**notebook_parameters(cfg), "out_dir": str(cfg.out_dir), "cache_dir": str(cfg.cache_dir),
              "fixtures_dir": str(cfg.fixtures)}
    copies = []
    for nb in NOTEBOOKS:
        declared = pm.inspect_notebook(str(nb))
        dst = tmp_path / "notebooks" / nb.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        pm.execute_notebook(str(nb), str(dst), parameters={k: v for k, v in params.items() if k in declared},
                            prepare_only=True, kernel_name="python3", progress_bar=False)
        copies.append(str(dst))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q", "-c", "/dev/null",
         "--rootdir", str(tmp_path), *copies],
        cwd=PROJECT_ROOT / "notebooks", capture_output=True, text=True, timeout=1500,
    )
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, tail
    assert " failed" not in proc.stdout.splitlines()[-1], tail
