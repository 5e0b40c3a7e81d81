import nbformat
import pytest

from hacalib.reproduce import NOTEBOOKS, ReproduceConfig, notebook_parameters, run_notebook, select_notebooks


def _notebook(path, params_src, body_src):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(params_src)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body_src)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_select_notebooks_by_prefix_and_errors_on_unknown(tmp_path):
    for name in ("01_data_construction", "03_table1_velociti"):
        _notebook(tmp_path / f"{name}.ipynb", "x = 1", "x")
    assert [p.stem for p in select_notebooks(tmp_path)] == ["01_data_construction", "03_table1_velociti"]
    assert [p.stem for p in select_notebooks(tmp_path, ["03"])] == ["03_table1_velociti"]
    with pytest.raises(ValueError, match="choose one of"):
        select_notebooks(tmp_path, ["05"])


def test_smoke_runs_never_write_over_committed_outputs(tmp_path):
    full = ReproduceConfig(project_root=tmp_path)
    smoke = ReproduceConfig(project_root=tmp_path, smoke=True)
    assert full.out_dir == tmp_path / "figures"
    assert smoke.out_dir.is_relative_to(tmp_path / "runs" / "smoke")
    assert smoke.cache_dir != full.cache_dir
    assert notebook_parameters(smoke)["smoke"] is True


def test_run_notebook_injects_only_declared_parameters(tmp_path):
    src = tmp_path / "nb.ipynb"
    _notebook(src, "smoke = False\nout_dir = 'x'", "from pathlib import Path\nPath(out_dir, 'done.txt').write_text(str(smoke))")
    out = tmp_path / "figs"
    out.mkdir()
    dst = run_notebook(src, tmp_path / "executed" / "nb.ipynb",
                       {"smoke": True, "out_dir": str(out), "seeds": [0]}, cwd=tmp_path)
    assert (out / "done.txt").read_text() == "True"
    executed = nbformat.read(dst, as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    assert "seeds" not in "".join(c.source for c in executed.cells)


def test_notebook_order_is_the_paper_walkthrough():
    assert [n[:2] for n in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06", "07"]
