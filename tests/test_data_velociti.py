"""hacalib.data.velociti: VELOCITI v1 per-test JSON, including control; bad input names file and key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hacalib.data import VELOCITI_TESTS, VelocitiItem, load_velociti, load_velociti_test, velociti_file
from hacalib.errors import DataError


def caps(test: str, n_videos: int = 2) -> dict:
    """A small test file in the real structure: {video_id: {event: {...}}}."""
    out = {}
    for v in range(n_videos):
        events = {}
        for e in range(2):
            if test == "control":
                events[f"Ev{e + 1}"] = {"pos_cap": f"{test} v{v} e{e} pos", "neg_cap": f"other caption {v}{e}", "neg_vid": f"vid{(v + 1) % n_videos}"}
            else:
                events[f"Ev{e + 1}"] = {"pos": f"{test} v{v} e{e} pos", "neg": f"{test} v{v} e{e} neg"}
        out[f"vid{v}"] = events
    return out


def write_root(root: Path, tests=VELOCITI_TESTS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for t in tests:
        (root / f"{t}.json").write_text(json.dumps(caps(t), indent=2), encoding="utf-8")
    return root


def test_loads_all_tests_in_order(tmp_path: Path):
    root = write_root(tmp_path / "velociti")
    items = load_velociti(root)
    assert len(items) == 8 * 2 * 2
    assert [i.test for i in items[::4]] == list(VELOCITI_TESTS)
    assert items[0] == VelocitiItem("agent_iden", "vid0", "Ev1", "agent_iden v0 e0 pos", "agent_iden v0 e0 neg")
    control = [i for i in items if i.test == "control"]
    assert control[0].pos == "control v0 e0 pos" and control[0].neg == "other caption 00" and control[0].neg_video == "vid1"
    assert all(i.neg_video is None for i in items if i.test != "control")


def test_subset_and_videos(tmp_path: Path):
    root = write_root(tmp_path / "velociti", tests=["coref", "control"])
    videos = root / "videos"
    with pytest.raises(DataError, match=r"coref\.json, key 'vid0/Ev1': video not found: .*vid0\.mp4"):
        load_velociti(root, tests=["coref"], video_root=videos, check_videos=True)
    videos.mkdir()
    for v in ("vid0", "vid1"):
        (videos / f"{v}.mp4").write_bytes(b"x")
    items = load_velociti(root, tests=["control"], video_root=videos, check_videos=True)
    assert items[0].video_path == str(videos / "vid0.mp4") and items[0].neg_video_path == str(videos / "vid1.mp4")
    with pytest.raises(DataError, match=r"agent_iden\.json: file not found"):
        load_velociti(root)  # None means all eight; six are absent
    with pytest.raises(ValueError, match="unknown VELOCITI test"):
        load_velociti(root, tests=["chrono"])
    assert velociti_file(root, "coref") == root / "coref.json"


def test_missing_neg_names_file_and_key(tmp_path: Path):
    data = caps("action_bind")
    del data["vid1"]["Ev2"]["neg"]
    path = tmp_path / "action_bind.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(DataError, match=r"action_bind\.json, key 'vid1/Ev2/neg': missing key"):
        load_velociti_test(path, "action_bind")


def test_control_needs_its_own_keys(tmp_path: Path):
    path = tmp_path / "control.json"
    path.write_text(json.dumps(caps("sequence")), encoding="utf-8")  # pos/neg instead of pos_cap/neg_cap
    with pytest.raises(DataError, match=r"control\.json, key 'vid0/Ev1/pos_cap': missing key"):
        load_velociti_test(path, "control")
    data = caps("control")
    del data["vid0"]["Ev2"]["neg_vid"]
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(DataError, match=r"control\.json, key 'vid0/Ev2/neg_vid': missing key"):
        load_velociti_test(path, "control")


def test_empty_caption_and_bad_structure(tmp_path: Path):
    path = tmp_path / "coref.json"
    data = caps("coref")
    data["vid0"]["Ev2"]["pos"] = " "
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(DataError, match=r"coref\.json, key 'vid0/Ev2/pos': empty text"):
        load_velociti_test(path, "coref")
    data["vid0"]["Ev2"]["pos"] = 3
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(DataError, match=r"coref\.json, key 'vid0/Ev2/pos': expected a string"):
        load_velociti_test(path, "coref")
    for bad, msg in (([1, 2], "expected a JSON object"), ({}, "no videos"), ({"vid0": []}, "key 'vid0': expected a non-empty object"),
                     ({"vid0": {"Ev1": "text"}}, "key 'vid0/Ev1': expected an object")):
        path.write_text(json.dumps(bad), encoding="utf-8")
        with pytest.raises(DataError, match=rf"coref\.json.*{msg}"):
            load_velociti_test(path, "coref")


def test_malformed_json_names_the_line(tmp_path: Path):
    path = tmp_path / "sequence.json"
    text = json.dumps(caps("sequence"), indent=2).splitlines()
    text[5] = text[5].rstrip(",")  # drop a comma inside the file
    path.write_text("\n".join(text), encoding="utf-8")
    with pytest.raises(DataError, match=r"sequence\.json: malformed JSON at line \d+"):
        load_velociti_test(path, "sequence")


def test_repeated_key_is_an_error(tmp_path: Path):
    # json.loads would keep only the second "Ev1" silently
    path = tmp_path / "agent_bind.json"
    path.write_text('{"vid0": {"Ev1": {"pos": "a", "neg": "b"}, "Ev1": {"pos": "c", "neg": "d"}}}', encoding="utf-8")
    with pytest.raises(DataError, match=r"agent_bind\.json, key 'Ev1': duplicate key"):
        load_velociti_test(path, "agent_bind")
