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
    paths = write_table(df, "t1", tmp_path, prov, title="Table", digits=3)
    assert pd.read_csv(paths["csv"]).equals(df)  # the CSV keeps full precision
    md = paths["md"].read_text()
    assert "| entail" in md and "0.512" in md and "0.5123" not in md and prov["git_commit"] in md
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


def test_readable_puts_intervals_in_one_cell_and_prints_counts_as_integers():
    from hacalib.report.readable import readable

    summary = pd.DataFrame({"row": ["haca", "entail"], "metric": "acc", "value": [0.61234, float("nan")],
                            "ci_low": [0.58, float("nan")], "ci_high": [0.6449, float("nan")],
                            "items": [1400.0, 1400.0], "parameters": [818560.0, 818560.0], "p": [0.53168, 0.1]})
    out = readable(summary)
    assert list(out.columns) == ["row", "metric", "value [95% CI]", "items", "parameters", "p"]
    assert out["value [95% CI]"].tolist() == ["61.2 [58.0, 64.5]", "collapsed"]  # fractions shown in %
    assert str(out["items"].dtype) == "Int64" and out["parameters"].iloc[0] == 818560
    assert out["p"].tolist() == [0.5, 0.1]
    claims = pd.DataFrame({"claim": ["A > B"], "difference": [3.14159], "ci_low": [0.43], "ci_high": [5.86]})
    assert readable(claims)["difference [95% CI]"].tolist() == ["3.1 [0.4, 5.9]"]  # points stay points
    assert readable(summary, digits=3)["p"].tolist() == [0.532, 0.1]
