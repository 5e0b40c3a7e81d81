

def test_an_edited_notebook_makes_the_commit_dirty_but_new_outputs_do_not(tmp_path):
    """Issue 30: a run of a notebook whose code was changed (say, two rows of a claim swapped) must not claim the
    clean commit; a reproduction rewrites outputs in place, and that alone must not make it dirty."""
    import json
    import subprocess

    import nbformat

    from hacalib.report.provenance import git_commit

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.org")
    git("config", "user.name", "t")
    (tmp_path / "notebooks").mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# title"), nbformat.v4.new_code_cell("claims = check('haca', 'entail')")]
    path = tmp_path / "notebooks" / "03.ipynb"
    nbformat.write(nb, path)
    git("add", ".")
    git("commit", "-qm", "init")
    clean = git_commit(tmp_path)
    assert not clean.endswith("+dirty")
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="new numbers")]  # a reproduction's outputs
    nb.cells[0].source = "# another title"
    injected = nbformat.v4.new_code_cell("seeds = [3]")
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(1, injected)
    nbformat.write(nb, path)
    assert git_commit(tmp_path) == clean
    nb.cells[2].source = "claims = check('entail', 'haca')"  # the code changed
    nbformat.write(nb, path)
    assert git_commit(tmp_path) == clean + "+dirty"
    from hacalib.report.provenance import changed_files

    assert changed_files(tmp_path) == ["notebooks/03.ipynb"]
    path.write_text(json.dumps({"not": "a notebook"})[:-3])  # unreadable counts as edited
    assert git_commit(tmp_path) == clean + "+dirty"
