import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from hacalib.config import TrainConfig, describe  # noqa: E402
from hacalib.report.artifacts import save_figure, write_table  # noqa: E402
from hacalib.report.provenance import provenance, redact  # noqa: E402


def test_provenance_has_the_fields_every_artifact_needs():
    prov = provenance(TrainConfig(seed=3), prompt_version="vX", seeds=[0, 1, 2])
    for key in ("git_commit", "prompt_version", "device", "packages", "config", "created", "python"):
        assert key in prov, key
    assert prov["prompt_version"] == "vX"
    assert prov["config"]["seed"] == 3
    assert prov["seeds"] == [0, 1, 2]
    assert prov["packages"]["torch"] != "not installed"
    json.dumps(prov)  # JSON-ready


def test_secrets_are_redacted_everywhere():
    rec = redact({"judge": {"api_key": "sk-123", "url": "http://x"}, "hf_token": "hf_abc", "items": [{"password": "p"}]})
    text = json.dumps(rec)
    assert "sk-123" not in text and "hf_abc" not in text and '"p"' not in text
    assert rec["judge"]["url"] == "http://x"
    prov = provenance({"api_key": "sk-secret"})
    assert "sk-secret" not in json.dumps(prov)


def test_write_table_writes_csv_markdown_and_provenance(tmp_path):
    df = pd.DataFrame({"row": ["entail", "haca"], "acc": [0.51234, 0.6]})
    prov = provenance(prompt_version="v1")
    paths = write_table(df, "t1", tmp_path, prov, title="Table")
    assert pd.read_csv(paths["csv"]).equals(df)
    md = paths["md"].read_text()
    assert "| entail" in md and "0.512" in md and prov["git_commit"] in md
    assert json.loads(paths["provenance"].read_text())["prompt_version"] == "v1"
    assert not list(tmp_path.glob(".*.tmp"))  # no temp files left behind


def test_save_figure_writes_png_and_svg(tmp_path):
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    paths = save_figure(fig, "f", tmp_path, provenance(prompt_version="v1"))
    plt.close(fig)
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in paths["svg"].read_text()[:500]


def test_describe_lists_every_field_with_help():
    text = describe(TrainConfig())
    assert "objective = 'haca'" in text and "#" in text
    assert len(text.splitlines()) == len(TrainConfig.__dataclass_fields__)
