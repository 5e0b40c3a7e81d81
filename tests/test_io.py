import pytest

from hacalib.errors import DataError
from hacalib.io import atomic_path, read_json, write_json


def test_atomic_path_leaves_old_file_when_the_block_fails(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half-writ")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_json_round_trip_and_malformed_json_names_file_and_line(tmp_path):
    p = write_json(tmp_path / "a.json", {"x": [1, 2]})
    assert read_json(p) == {"x": [1, 2]}
    bad = tmp_path / "bad.json"
    bad.write_text('{"x": 1,\n "y": }')
    with pytest.raises(DataError, match=r"bad\.json.*line 2"):
        read_json(bad)
    with pytest.raises(DataError, match="missing.json: file not found"):
        read_json(tmp_path / "missing.json")


def test_data_error_message_names_file_row_and_key():
    err = DataError("x.csv", "empty caption", row=7, key="caption")
    assert str(err) == "x.csv, row 7, key 'caption': empty caption"


def test_a_frame_with_carriage_returns_and_line_separators_reads_back_exactly(tmp_path):
    """Generated answers can hold any character a tokenizer has a piece for (Mistral has <0x0D>)."""
    import pandas as pd

    from hacalib.io import write_frame_csv

    frame = pd.DataFrame({"answer": ["No, a man\rwalks", "yes\r\n", "line\nbreak", "p\u2028q", 'say "no"', ""],
                          "says_no": [True, False, True, False, True, False], "overlap": [0.5, 1.0, 0.0, 0.25, 1, 0]})
    write_frame_csv(frame, tmp_path / "items.csv")
    back = pd.read_csv(tmp_path / "items.csv", keep_default_na=False, na_values=[""])
    assert back["says_no"].dtype == bool and back["says_no"].tolist() == frame["says_no"].tolist()
    assert back["answer"].fillna("").tolist() == frame["answer"].tolist()
    assert back["overlap"].tolist() == frame["overlap"].tolist()
