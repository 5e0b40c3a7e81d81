"""`haca fetch-data` offline: hub-shaped folders built from the real VideoCon / SSv2 samples and VELOCITI-format rows.

The hub folders are laid out as the repositories are (`videocon/videocon/videocon_llm_entailment.csv`; VELOCITI's
flat `test` table with `video_id, test_name, event, pos, neg, in_subset` and a zip of `<video_id>.mp4`), read through
`--hub-dir` by the same conversion code a real download goes through.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest

from hacalib.cli import main as cli_main
from hacalib.data import (DataRoot, load_msrvtt_qa, load_retrieval_matrix, load_velociti, load_videocon,
                          VELOCITI_TESTS)
from hacalib.data import fetch, hub
from hacalib.errors import DataError, UsageError
from hacalib.io import sha256_file

SAMPLES = Path(__file__).resolve().parents[1] / "hacalib" / "samples"
VIDEOCON_REV = "1" * 40
VELOCITI_REV = "2" * 40
REVS = {"videocon": VIDEOCON_REV, "velociti": VELOCITI_REV}
HUB_NAMES = ("agent_random", "agent_bind", "action_bind", "action_manner", "action_adv", "coref", "chrono")
VIDEOS = ["v_a_seg_0_10", "v_b_seg_10_20", "v_c_seg_20_30"]


def _videocon_csv(n: int = 12) -> str:
    """The header and the first n rows of the real sample, byte for byte."""
    lines = (SAMPLES / "videocon" / "videocon_llm_entailment_train_sample.csv").read_text(encoding="utf-8").splitlines(True)
    return "".join(lines[: n + 1])


def _velociti_rows() -> list[dict]:
    rows = []
    for k, vid in enumerate(VIDEOS):
        for name in HUB_NAMES:
            rows.append({"video_id": f"{vid}.mp4", "test_name": name, "event": "Ev1" if name != "chrono" else "(Ev1, Ev2)",
                         "pos": f"In a kitchen, person {k} does {name}.", "neg": f"In a kitchen, person {k} fails {name}.",
                         "in_subset": k == 0})
        # control: the negative is another video's positive caption (the hub rows carry no neg_vid)
        other = (k + 1) % len(VIDEOS)
        rows.append({"video_id": vid, "test_name": "control", "event": "Ev1", "pos": f"In a kitchen, person {k} does coref.",
                     "neg": f"In a kitchen, person {other} does agent_bind.", "in_subset": False})
    return rows


def _write_velociti_hub(repo: Path, rows: list[dict]) -> None:
    (repo / "data").mkdir(parents=True)
    (repo / "README.md").write_text("---\nlicense: cc-by-nc-sa-4.0\n---\n# VELOCITI\n", encoding="utf-8")
    (repo / "data" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with zipfile.ZipFile(repo / "velociti_videos.zip", "w") as z:
        for vid in VIDEOS:
            z.writestr(f"velociti_videos_10s/{vid}.mp4", f"mp4 bytes of {vid}".encode() * 50)
            z.writestr(f"velociti_videos_4s/{vid}/{vid}_p1.mp4", b"an event clip we do not use")


def _source_dir(src: Path, *, drop: tuple[str, ...] = ()) -> dict:
    """A user's folder laid out like the data_root: SSv2 matrices + videos, MSRVTT-QA + videos, VideoCon videos."""
    matrix = (SAMPLES / "ssv2_temporal" / "eval_ssv2_temporal.csv").read_bytes()
    names = {}
    for name in ("temporal", "events"):
        rel = f"ssv2/eval_ssv2_{name}.csv"
        if rel not in drop:
            (src / "ssv2").mkdir(parents=True, exist_ok=True)
            (src / rel).write_bytes(matrix)
    videopaths = sorted({r["videopath"] for r in csv.DictReader(io.StringIO(matrix.decode("utf-8")))})
    names["ssv2"] = [f"ssv2/videos/{v}" for v in videopaths]
    questions = [{"video_name": f"video{7000 + i // 2}", "question": f"what is shown {i}?", "question_id": i}
                 for i in range(6)]
    answers = [{"answer": "dog", "type": "what", "question_id": i} for i in range(6)]
    (src / "msrvtt_qa").mkdir(parents=True)
    (src / "msrvtt_qa" / "test_q.json").write_text(json.dumps(questions), encoding="utf-8")
    (src / "msrvtt_qa" / "test_a.json").write_text(json.dumps(answers), encoding="utf-8")
    names["msrvtt_qa"] = [f"msrvtt_qa/videos/video{7000 + i}.mp4" for i in range(3)]
    rows = list(csv.DictReader(io.StringIO(_videocon_csv())))
    names["videocon"] = [f"videocon/videos/{p}" for p in dict.fromkeys(r["videopath"] for r in rows)]
    for rel in names["ssv2"] + names["msrvtt_qa"] + names["videocon"]:
        if rel not in drop:
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).write_bytes(b"video " + rel.encode())
    return names


@pytest.fixture
def world(tmp_path):
    hub_dir = tmp_path / "hub"
    (hub_dir / "videocon" / "videocon").mkdir(parents=True)
    (hub_dir / "videocon" / "videocon" / "videocon_llm_entailment.csv").write_text(_videocon_csv(), encoding="utf-8")
    (hub_dir / "videocon" / "videocon" / "videocon_human.csv").write_text("video_url,caption\n", encoding="utf-8")
    _write_velociti_hub(hub_dir / "katha-ai-iiith" / "VELOCITI", _velociti_rows())
    names = _source_dir(tmp_path / "src")
    return {"hub": hub_dir, "src": tmp_path / "src", "out": tmp_path / "data", "names": names}


def _run(world, only=fetch.DATASETS, **kw):
    lines = []
    f = fetch.Fetcher(world["out"], revisions=kw.pop("revisions", REVS), source_dir=world["src"], hub_dir=world["hub"],
                      log=lines.append, **kw)
    return f.run(only), lines


def test_fetch_writes_a_data_root_the_loaders_accept(world):
    manifest, _ = _run(world)
    root = DataRoot(world["out"])
    assert root.benchmarks() == {"videocon": True, "velociti": True, "ssv2": True, "msrvtt_qa": True}
    rows = load_videocon(root.videocon_csv, video_root=root.videocon_videos, check_videos=True, duplicates="keep")
    assert len(rows) == 12
    assert root.videocon_csv.read_bytes() == _videocon_csv().encode()  # byte for byte
    items = load_velociti(root.velociti_dir, video_root=root.velociti_videos, check_videos=True)
    assert {i.test for i in items} == set(VELOCITI_TESTS) and len(items) == 8 * len(VIDEOS)
    control = [i for i in items if i.test == "control"]
    assert [i.neg_video for i in control] == ["v_b_seg_10_20", "v_c_seg_20_30", "v_a_seg_0_10"]
    seq = [i for i in items if i.test == "sequence"]
    assert seq[0].event == "(Ev1, Ev2)" and seq[0].video_id == "v_a_seg_0_10"
    assert sorted(p.name for p in root.velociti_videos.iterdir()) == sorted(f"{v}.mp4" for v in VIDEOS)  # no 4 s clips
    for name in ("temporal", "events"):
        assert load_retrieval_matrix(root.ssv2_matrix(name)).shape == (18, 216)
    qa = load_msrvtt_qa(root.msrvtt_qa_questions, root.msrvtt_qa_answers, video_root=root.msrvtt_qa_videos,
                        check_videos=True)
    assert len(qa) == 6
    assert not (world["out"] / fetch.MISSING).exists()


def test_the_manifest_lists_every_file_with_its_sha256(world):
    manifest, _ = _run(world)
    assert json.loads((world["out"] / fetch.MANIFEST).read_text()) == manifest
    vc, vel = manifest["datasets"]["videocon"], manifest["datasets"]["velociti"]
    assert vc["request"]["repo"] == "videocon/videocon" and vc["request"]["revision"] == VIDEOCON_REV
    assert vel["request"] == {"repo": "katha-ai-iiith/VELOCITI", "revision": VELOCITI_REV,
                              "from": f"local copy {world['hub'].resolve()}"}
    # hub files: exactly the repository's files (VideoCon: only the CSV we use), each with size and sha256
    assert sorted(vc["hub_files"]) == [".hub/videocon/videocon/videocon_llm_entailment.csv"]
    assert sorted(vel["hub_files"]) == [".hub/katha-ai-iiith/VELOCITI/README.md",
                                        ".hub/katha-ai-iiith/VELOCITI/data/test.jsonl",
                                        ".hub/katha-ai-iiith/VELOCITI/velociti_videos.zip"]
    out = world["out"]
    for section in manifest["datasets"].values():
        for rel, rec in {**section.get("hub_files", {}), **section["files"]}.items():
            assert rec["size"] == (out / rel).stat().st_size
            if "link" not in rec:
                assert rec["sha256"] == sha256_file(out / rel), rel
    # what was converted from what
    assert vel["files"]["velociti/agent_iden.json"]["from"] == [".hub/katha-ai-iiith/VELOCITI/data/test.jsonl"]
    assert vel["files"]["velociti/videos/v_a_seg_0_10.mp4"]["from"] == [
        ".hub/katha-ai-iiith/VELOCITI/velociti_videos.zip:velociti_videos_10s/v_a_seg_0_10.mp4"]
    assert len([r for r in vel["files"] if r.endswith(".json")]) == 8
    linked = manifest["datasets"]["ssv2"]["files"]["ssv2/videos/" + world["names"]["ssv2"][0][len("ssv2/videos/"):]]
    assert Path(linked["link"]).is_file() and (out / "ssv2" / "eval_ssv2_temporal.csv").is_file()
    assert all(s["status"] == "complete" and s["missing"] == [] for s in manifest["datasets"].values())


def test_a_second_run_does_nothing(world):
    first, _ = _run(world)
    stamps = {p: p.stat().st_mtime_ns for p in world["out"].rglob("*") if p.is_file()}
    second, lines = _run(world)
    assert second == first
    assert lines == [f"{n}: up to date ({len(first['datasets'][n].get('hub_files', {})) + len(first['datasets'][n]['files'])} "
                     f"files match {fetch.MANIFEST})" for n in fetch.DATASETS]
    assert {p: p.stat().st_mtime_ns for p in world["out"].rglob("*") if p.is_file()} == stamps


@pytest.mark.parametrize("rel", ["velociti/coref.json", ".hub/katha-ai-iiith/VELOCITI/velociti_videos.zip",
                                 "videocon/videocon_llm_entailment.csv", "velociti/videos/v_b_seg_10_20.mp4"])
def test_a_truncated_file_is_named(world, rel):
    _run(world)
    path = world["out"] / rel
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(DataError, match="truncated or altered") as exc:
        _run(world)
    assert exc.value.path == str(path) and rel in str(exc.value)


@pytest.mark.parametrize("rel", ["velociti/control.json", ".hub/videocon/videocon/videocon_llm_entailment.csv"])
def test_an_altered_file_of_the_same_size_is_named(world, rel):
    _run(world)
    path = world["out"] / rel
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"sha256 differs .*\(altered\)") as exc:
        _run(world)
    assert exc.value.path == str(path)
    # --refetch fetches and converts again, and the next run is a no-op
    _run(world, refetch=True)
    _, lines = _run(world)
    assert all("up to date" in line for line in lines)


def test_a_user_video_cut_short_is_named(world):
    _run(world)
    src = world["src"] / world["names"]["msrvtt_qa"][1]
    src.write_bytes(src.read_bytes()[:3])
    with pytest.raises(DataError, match="truncated or altered") as exc:
        _run(world)
    assert exc.value.path.endswith("msrvtt_qa/videos/video7001.mp4")


def test_missing_ssv2_and_msrvtt_qa_files_are_listed_by_name(tmp_path, world):
    src = tmp_path / "src2"
    names = _source_dir(src, drop=("ssv2/eval_ssv2_events.csv", world["names"]["ssv2"][5], "msrvtt_qa/videos/video7002.mp4"))
    f = fetch.Fetcher(tmp_path / "data2", source_dir=src, log=lambda line: None)
    with pytest.raises(DataError) as exc:
        f.run(("ssv2", "msrvtt_qa"))
    message = str(exc.value)
    assert "3 file(s) missing" in message and "ssv2: 2 (e.g. " in message and "msrvtt_qa: 1 (e.g. msrvtt_qa/videos/video7002.mp4)" in message
    listed = (tmp_path / "data2" / fetch.MISSING).read_text().splitlines()
    assert listed == [f"ssv2\t{names['ssv2'][5]}", "ssv2\tssv2/eval_ssv2_events.csv", "msrvtt_qa\tmsrvtt_qa/videos/video7002.mp4"]
    # what is present is in the layout and loads; the incomplete datasets are fetched again next time
    root = DataRoot(tmp_path / "data2")
    assert load_retrieval_matrix(root.ssv2_matrix("temporal")).shape == (18, 216)
    manifest = json.loads((tmp_path / "data2" / fetch.MANIFEST).read_text())
    assert manifest["datasets"]["ssv2"]["status"] == "incomplete"
    (src / names["ssv2"][5]).write_bytes(b"found it")
    (src / "msrvtt_qa" / "videos" / "video7002.mp4").write_bytes(b"found it")
    (src / "ssv2" / "eval_ssv2_events.csv").write_bytes((src / "ssv2" / "eval_ssv2_temporal.csv").read_bytes())
    f.run(("ssv2", "msrvtt_qa"))
    assert not (tmp_path / "data2" / fetch.MISSING).exists()


def test_without_a_source_dir_the_non_hub_files_are_named(tmp_path):
    f = fetch.Fetcher(tmp_path / "data", log=lambda line: None)
    with pytest.raises(DataError, match="expected under a folder given with --source-dir") as exc:
        f.run(("msrvtt_qa",))
    assert "msrvtt_qa/test_q.json" in str(exc.value)


def test_the_cli_fetches_and_names_a_bad_file_in_one_line(world, capsys):
    args = ["fetch-data", "--out", str(world["out"]), "--hub-dir", str(world["hub"]), "--source-dir", str(world["src"]),
            "--revision", f"videocon={VIDEOCON_REV}", "--revision", f"velociti={VELOCITI_REV}"]
    assert cli_main(args) == 0
    assert "complete; manifest" in capsys.readouterr().out
    bad = world["out"] / "velociti" / "agent_bind.json"
    bad.write_text(bad.read_text()[:-20])
    assert cli_main(args + ["--only", "velociti"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("haca: error: ") and str(bad) in err and err.count("\n") == 1


@pytest.mark.parametrize("revs, match", [({"velociti": VELOCITI_REV}, "videocon: give the hub commit"),
                                         ({"videocon": "main", "velociti": VELOCITI_REV}, "got 'main'")])
def test_a_revision_must_be_a_pinned_commit(world, revs, match):
    with pytest.raises(UsageError, match=match):
        _run(world, revisions=revs)
    with pytest.raises(UsageError, match="NAME=COMMIT"):
        fetch.main(["--out", str(world["out"]), "--revision", "ssv2=abc"])


def test_a_snapshot_without_the_videocon_csv_is_named(tmp_path):
    (tmp_path / "snap").mkdir()
    (tmp_path / "snap" / "videocon_human.csv").write_text("x\n")
    with pytest.raises(DataError, match="has no videocon_llm_entailment.csv .files: videocon_human.csv"):
        hub.convert_videocon(tmp_path / "snap", DataRoot(tmp_path / "data"))


def test_velociti_conversion_is_strict(tmp_path):
    rows = _velociti_rows()
    rows[-1]["neg"] = "A caption no video has."  # a control negative that belongs to no video
    _write_velociti_hub(tmp_path / "a", rows)
    with pytest.raises(DataError, match="control row names no neg_vid") as exc:
        hub.convert_velociti(tmp_path / "a", DataRoot(tmp_path / "data"))
    assert exc.value.row == len(rows) - 1 and exc.value.key == "neg"
    rows = _velociti_rows()
    rows[3]["test_name"] = "agent_fantasy"
    _write_velociti_hub(tmp_path / "b", rows)
    with pytest.raises(DataError, match="unknown test_name 'agent_fantasy'") as exc:
        hub.convert_velociti(tmp_path / "b", DataRoot(tmp_path / "data"))
    assert exc.value.row == 3
    rows = _velociti_rows()
    rows.append(dict(rows[0]))
    _write_velociti_hub(tmp_path / "c", rows)
    with pytest.raises(DataError, match="repeated .agent_random, v_a_seg_0_10, Ev1."):
        hub.convert_velociti(tmp_path / "c", DataRoot(tmp_path / "data"))
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "README.md").write_text("# no data\n")
    with pytest.raises(DataError, match="neither a table of rows"):
        hub.convert_velociti(tmp_path / "d", DataRoot(tmp_path / "data"))


def test_velociti_videos_missing_from_the_snapshot_are_listed(tmp_path):
    rows = _velociti_rows()
    _write_velociti_hub(tmp_path / "a", rows)
    with zipfile.ZipFile(tmp_path / "a" / "velociti_videos.zip", "w") as z:
        z.writestr(f"velociti_videos_10s/{VIDEOS[0]}.mp4", b"one video only")
    with pytest.raises(DataError, match=r"2 of 3 videos the annotations name are in no archive .*v_b_seg_10_20.mp4"):
        hub.convert_velociti(tmp_path / "a", DataRoot(tmp_path / "data"))


def test_the_v1_json_layout_is_copied_as_it_is(tmp_path):
    snap = tmp_path / "snap"
    for test in VELOCITI_TESTS:
        caps = {"pos_cap": "a", "neg_cap": "b", "neg_vid": VIDEOS[1]} if test == "control" else {"pos": "a", "neg": "b"}
        (snap / "data").mkdir(parents=True, exist_ok=True)
        (snap / "data" / f"{test}.json").write_text(json.dumps({VIDEOS[0]: {"Ev1": caps}}))
    (snap / "videos").mkdir()
    for vid in VIDEOS[:2]:
        (snap / "videos" / f"{vid}.mp4").write_bytes(b"clip")
    root = DataRoot(tmp_path / "data")
    hub.convert_velociti(snap, root)
    assert root.velociti_test("coref").read_bytes() == (snap / "data" / "coref.json").read_bytes()
    assert len(load_velociti(root.velociti_dir, video_root=root.velociti_videos, check_videos=True)) == 8


def test_downloads_go_through_huggingface_hub_at_the_pinned_commit(tmp_path, monkeypatch):
    import huggingface_hub

    calls = []

    def fake_snapshot_download(repo_id, **kw):
        calls.append((repo_id, kw))
        (Path(kw["local_dir"])).mkdir(parents=True)
        (Path(kw["local_dir"]) / "videocon_llm_entailment.csv").write_text(_videocon_csv(3), encoding="utf-8")
        from huggingface_hub._local_folder import write_download_metadata  # as the real download records it

        write_download_metadata(Path(kw["local_dir"]), "videocon_llm_entailment.csv", kw["revision"], "etag")
        return str(kw["local_dir"])

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    f = fetch.Fetcher(tmp_path / "data", revisions={"videocon": VIDEOCON_REV}, log=lambda line: None)
    with pytest.raises(DataError, match="videocon: 3 .e.g. videocon/videos/"):  # its videos are the user's to supply
        f.run(("videocon",))
    (repo_id, kw), = calls
    assert repo_id == "videocon/videocon" and kw["repo_type"] == "dataset" and kw["revision"] == VIDEOCON_REV
    assert kw["local_dir"] == tmp_path / "data" / ".hub" / "videocon" / "videocon"
    assert kw["allow_patterns"] == hub.VIDEOCON_PATTERNS and kw["force_download"] is False


def _prefilled(tmp_path, commit, rows=4):
    """What an earlier download at `commit` left in `.hub/`: the files and huggingface_hub's record of their commit."""
    from huggingface_hub._local_folder import write_download_metadata

    snap = tmp_path / "data" / ".hub" / "videocon" / "videocon"
    snap.mkdir(parents=True, exist_ok=True)
    (snap / "videocon_llm_entailment.csv").write_text(_videocon_csv(rows), encoding="utf-8")
    if commit:
        write_download_metadata(snap, "videocon_llm_entailment.csv", commit, "etag")
    return snap


def test_the_real_download_layer_offline_reads_a_prefilled_snapshot_of_the_asked_revision(tmp_path, monkeypatch):
    """huggingface_hub itself (no stand-in), offline: an earlier download of the asked commit is what gets converted,
    and the manifest records the commit the files are of."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    _prefilled(tmp_path, VIDEOCON_REV)
    f = fetch.Fetcher(tmp_path / "data", revisions={"videocon": VIDEOCON_REV}, log=lambda line: None)
    with pytest.raises(DataError, match="videocon: 4 "):  # the videos are still the user's to supply
        f.run(("videocon",))
    root = DataRoot(tmp_path / "data")
    assert len(load_videocon(root.videocon_csv, duplicates="keep")) == 4
    manifest = json.loads((tmp_path / "data" / fetch.MANIFEST).read_text())
    assert manifest["datasets"]["videocon"]["request"]["from"] == "huggingface_hub"
    assert manifest["datasets"]["videocon"]["resolved_revision"] == VIDEOCON_REV
    assert manifest["datasets"]["videocon"]["status"] == "incomplete"


@pytest.mark.parametrize("left", ["a" * 40, None])
def test_offline_files_of_another_or_unknown_revision_are_not_recorded_as_the_asked_one(tmp_path, monkeypatch, left):
    """Issue 30: `--revision videocon=<B>` with the hub unreachable converted the files of revision A fetched earlier
    and recorded them as B, complete, exit 0."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    _prefilled(tmp_path, left)
    f = fetch.Fetcher(tmp_path / "data", revisions={"videocon": VIDEOCON_REV}, log=lambda line: None)
    with pytest.raises(DataError, match=rf"asked for revision {VIDEOCON_REV}.*{'a' * 12 if left else 'unknown'}"):
        f.run(("videocon",))
    assert not (tmp_path / "data" / fetch.MANIFEST).exists() and not (tmp_path / "data" / "videocon").exists()


def test_a_download_that_cannot_happen_is_one_clear_error(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    f = fetch.Fetcher(tmp_path / "data", revisions={"velociti": VELOCITI_REV}, log=lambda line: None)
    with pytest.raises(DataError, match=f"cannot download revision {VELOCITI_REV}.*next run resumes it") as exc:
        f.run(("velociti",))
    assert exc.value.path == "https://huggingface.co/datasets/katha-ai-iiith/VELOCITI"
    assert not (tmp_path / "data" / fetch.MANIFEST).exists()


def test_a_relative_out_folder_works(world, monkeypatch):
    monkeypatch.chdir(world["out"].parent)
    manifest = fetch.Fetcher("data", revisions=REVS, source_dir="src", hub_dir="hub", log=lambda line: None).run()
    assert "velociti/videos/v_a_seg_0_10.mp4" in manifest["datasets"]["velociti"]["files"]
    assert len(load_velociti(Path("data/velociti"), video_root=Path("data/velociti/videos"), check_videos=True)) == 24


def test_a_parquet_table_converts_like_the_json_lines_table(tmp_path):
    """The hub's table may be parquet (what `datasets` uploads write; the card does not say): the same rows as
    parquet give the same per-test files as the JSON-lines table."""
    import pandas as pd

    rows = _velociti_rows()
    _write_velociti_hub(tmp_path / "jsonl", rows)
    _write_velociti_hub(tmp_path / "parquet", rows)
    (tmp_path / "parquet" / "data" / "test.jsonl").unlink()
    pd.DataFrame(rows).to_parquet(tmp_path / "parquet" / "data" / "test-00000-of-00001.parquet")
    written = {}
    for name in ("jsonl", "parquet"):
        root = DataRoot(tmp_path / f"data-{name}")
        hub.convert_velociti(tmp_path / name, root)
        written[name] = {p.name: p.read_bytes() for p in sorted(root.velociti_dir.glob("*.json"))}
    assert len(written["parquet"]) == len(HUB_NAMES) + 1 and written["parquet"] == written["jsonl"]


def test_a_parquet_table_is_read_or_named(tmp_path):
    """A parquet table that cannot be read (cut short or altered; or no pyarrow) is named."""
    (tmp_path / "snap" / "data").mkdir(parents=True)
    bad = tmp_path / "snap" / "data" / "test-00000-of-00001.parquet"
    bad.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(DataError, match="pyarrow|parquet") as exc:
        hub.convert_velociti(tmp_path / "snap", DataRoot(tmp_path / "data"))
    assert exc.value.path == str(bad)


@pytest.mark.parametrize("escape", ["../../../notes.txt", "/etc/hostname-copy", "sub/../../../../notes.txt"])
def test_a_video_path_from_a_data_file_cannot_leave_the_folder(tmp_path, world, escape):
    """Issue 30: an SSv2 matrix whose videopath was ../../../notes.txt replaced notes.txt (outside the data root)
    with a symlink to itself. Now the path is refused by name and nothing outside the scratch folder changes."""
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    matrix = world["src"] / "ssv2" / "eval_ssv2_temporal.csv"
    rows = list(csv.DictReader(io.StringIO(matrix.read_text(encoding="utf-8"))))
    victim = rows[0]["videopath"]
    for row in rows:  # every pair of one video: the matrix stays complete
        row["videopath"] = escape if row["videopath"] == victim else row["videopath"]
    with matrix.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    outside = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    with pytest.raises(DataError, match=r"eval_ssv2_temporal\.csv.*leaves"):
        _run(world, only=("ssv2",))
    assert notes.read_text() == "my notes" and not notes.is_symlink()
    assert {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == outside


def test_confined_refuses_absolute_parent_and_symlinked_escapes(tmp_path):
    from hacalib.io import confined

    root = tmp_path / "root"
    (root / "videos").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (root / "videos" / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert confined(root, "videos/a.mp4", source="m.csv") == root / "videos" / "a.mp4"
    for bad in ("/abs.mp4", "../x.mp4", "videos/../../x.mp4", "videos/link/x.mp4", "", "."):
        with pytest.raises(DataError, match=r"m\.csv, key 'videopath'.*leaves"):
            confined(root, bad, source="m.csv", key="videopath")


def test_a_legal_long_video_name_is_linked(tmp_path, world):
    """Issue 30: a 244-byte video file name failed with "File name too long": the temporary name added characters
    past the 255-byte limit."""
    long_name = "v" * 240 + ".mp4"
    src = world["src"] / "msrvtt_qa" / "videos" / long_name
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(b"a video")
    dest = tmp_path / "data" / "msrvtt_qa" / "videos" / long_name
    fetch.place(src, dest, copy=False)
    assert dest.read_bytes() == b"a video"
    fetch.place(src, tmp_path / "data" / "copied" / long_name, copy=True)
    assert (tmp_path / "data" / "copied" / long_name).read_bytes() == b"a video"


def test_a_full_disk_names_the_folder_being_written(tmp_path, monkeypatch):
    import errno
    import shutil

    src = tmp_path / "video.mp4"
    src.write_bytes(b"a video")

    def full(a, b):
        raise OSError(errno.ENOSPC, "No space left on device", str(a))

    monkeypatch.setattr(shutil, "copyfile", full)
    with pytest.raises(OSError) as exc:
        fetch.place(src, tmp_path / "data" / "videos" / "video.mp4", copy=True)
    assert exc.value.errno == errno.ENOSPC and exc.value.filename == str(tmp_path / "data" / "videos")
