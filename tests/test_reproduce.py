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
    assert [p.stem for p in select_notebooks(tmp_path, ["03", "01"])] == ["01_data_construction", "03_table1_velociti"]
    with pytest.raises(ValueError, match="choose one of"):
        select_notebooks(tmp_path, ["05"])


def test_smoke_runs_never_write_over_committed_outputs(tmp_path):
    full = ReproduceConfig(project_root=tmp_path)
    smoke = ReproduceConfig(project_root=tmp_path, smoke=True)
    assert full.out_dir == tmp_path / "figures"
    assert smoke.out_dir.is_relative_to(tmp_path / "runs" / "smoke")
    assert smoke.cache_dir != full.cache_dir
    assert notebook_parameters(smoke)["smoke"] is True
    assert notebook_parameters(full)["seeds"] is None and notebook_parameters(full)["seed"] == 0  # the preset's


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


def test_notebook_order_is_the_paper_walkthrough_then_the_summary():
    assert [n[:2] for n in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06", "07", "00"]


def test_defaults_are_not_injected_and_a_stale_injected_cell_is_dropped(tmp_path):
    """A run on the notebook's own defaults reads as the notebook: no injected-parameters cell, not even the one an
    earlier run with other values left in the (in-place) notebook."""
    src = tmp_path / "nb.ipynb"
    _notebook(src, "smoke = False\nseeds = None", "from pathlib import Path\nPath('seen.txt').write_text(repr(seeds))")
    run_notebook(src, src, {"smoke": True, "seeds": [3]}, cwd=tmp_path)  # in place, as `haca reproduce` does
    tags = [c.metadata.get("tags", []) for c in nbformat.read(src, as_version=4).cells]
    assert ["injected-parameters"] in tags and (tmp_path / "seen.txt").read_text() == "[3]"
    run_notebook(src, src, {"smoke": False, "seeds": None}, cwd=tmp_path)
    tags = [c.metadata.get("tags", []) for c in nbformat.read(src, as_version=4).cells]
    assert ["injected-parameters"] not in tags and (tmp_path / "seen.txt").read_text() == "None"


def test_an_executed_notebook_records_its_source_by_name_and_does_not_grow_per_run(tmp_path):
    """papermill given a notebook object records the whole object as input_path: each in-place run would nest the
    previous notebook inside the next (the committed notebooks reached megabytes that way)."""
    src = tmp_path / "nb.ipynb"
    _notebook(src, "smoke = False", "x = 1")
    sizes = []
    for _ in range(3):
        run_notebook(src, src, {"smoke": True}, cwd=tmp_path)
        sizes.append(src.stat().st_size)
    assert nbformat.read(src, as_version=4).metadata["papermill"]["input_path"] == "nb.ipynb"
    assert max(sizes) - min(sizes) < 200, sizes  # timestamps may differ by a few bytes, the notebook does not grow


def test_reproduce_prints_one_line_per_notebook(tmp_path, capsys):
    from hacalib.reproduce import reproduce

    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    _notebook(nbs / "01_data_construction.ipynb", "preset = 'toy'", "x = 1")
    nb = nbformat.read(nbs / "01_data_construction.ipynb", as_version=4)
    nb.cells.insert(0, nbformat.v4.new_markdown_cell("# 01 · Data construction\n\ntext"))
    nbformat.write(nb, nbs / "01_data_construction.ipynb")
    reproduce(ReproduceConfig(project_root=tmp_path, only=["01"]))
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    assert lines[0].startswith("[reproduce] 1/1 01 · Data construction ... ") and lines[0].endswith(" s")
    assert len(lines) == 2 and "KeyboardInterrupt" not in out.err


@pytest.mark.parametrize("name,value", [("seeds", "0,1"), ("seeds", [0, 1.5]), ("smoke", 1), ("world_seed", "0"),
                                        ("families", "video_llava"), ("num_processes", True)])
def test_notebook_parameters_of_the_wrong_kind_are_one_line(name, value):
    """Issue 30: papermill injects any JSON; a wrong kind is named before any work."""
    from hacalib.errors import UsageError
    from hacalib.notebook import check_parameters

    with pytest.raises(UsageError, match=rf"notebook parameter {name} must be"):
        check_parameters(**{name: value})
    check_parameters(seeds=[0, 1], smoke=False, families=None, world_seed=0, num_processes=1, preset="toy")
