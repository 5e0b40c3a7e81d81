"""The Hugging Face hub releases of VideoCon and VELOCITI -> the data_root layout our loaders read.

- `videocon/videocon` (MIT): `videocon_llm_entailment.csv` is copied byte for byte after the VideoCon loader has
  read it. The release has no videos: they come from MSR-VTT, VaTeX (Kinetics-600 val) and TEMPO (DiDeMo), each
  downloaded from its own source (Hritikbansal/videocon `datasets/*.md`), so `hacalib.data.fetch` links them from
  the user's folder.
- `katha-ai-iiith/VELOCITI` (CC BY-NC-SA, test only, gated: log in with `hf auth login`): its dataset card
  describes one flat `test` split with `video_id, test_name, event, pos, neg, in_subset` (8,792 rows), and the
  evaluation scripts of katha-ai/VELOCITI read videos as `<frames_root>/<video_id>.mp4`. The card does not say in
  which file format the table is stored, nor how the videos are packed, so both are found, not assumed: the
  table is every `*.parquet` / `*.csv` / `*.jsonl` / JSON-list file holding those columns; videos are the
  `<video_id>.mp4` members of `*.zip` / `*.tar*` archives or loose `.mp4` files. If the snapshot instead holds
  the v1 per-test JSON files, those are used as they are.

A snapshot comes from `huggingface_hub.snapshot_download` (resumable, at a commit) or, offline, from a folder
laid out like the repository (`hub_dir/<owner>/<name>/...`): the same conversion code reads either.

May import: its own package's modules, `hacalib.errors`, `hacalib.io`, huggingface_hub and pandas (lazily).
"""

from __future__ import annotations

import fnmatch
import json
import shutil
import tarfile
import zipfile
from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator

from ..errors import DataError
from ..io import atomic_path, write_text
from ._common import read_csv, read_json_strict
from .layout import DataRoot
from .velociti import CONTROL, TESTS, load_velociti_test
from .videocon import load_videocon

REPOS = {"videocon": "videocon/videocon", "velociti": "katha-ai-iiith/VELOCITI"}
VIDEOCON_CSV = "videocon_llm_entailment.csv"
VIDEOCON_PATTERNS = [VIDEOCON_CSV, "README.md"]  # the feedback and human CSVs are not used
VELOCITI_COLUMNS = ("video_id", "test_name", "event", "pos", "neg")
# The hub release's test names (katha-ai/VELOCITI `vidllm_eval.py`, `clip_eval.py`) -> the v1 names our loader and
# tables use (`data_explore.ipynb`, `main_eval.py`). The pairing is read from the names and the paper's test list.
HUB_TEST_NAMES = {"agent_random": "agent_iden", "action_manner": "action_mod", "chrono": "sequence"}
_TABLE_SUFFIXES = (".parquet", ".csv", ".jsonl", ".json")


def hub_files(folder: Path) -> list[str]:
    """Relative POSIX paths of the files of a snapshot, sorted; dot paths (`.cache/`, `.gitattributes`) skipped."""
    out = []
    for p in folder.rglob("*"):
        rel = p.relative_to(folder)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            out.append(rel.as_posix())
    return sorted(out)


def snapshot(repo_id: str, revision: str, dest: Path, *, hub_dir: Path | None = None,
             allow_patterns: list[str] | None = None, force: bool = False) -> tuple[Path, str]:
    """The repository's files at `revision` in `dest` (a folder of their own); returns `dest` and the commit its
    files are of (checked: `downloaded_commit`; with `hub_dir`, the asked revision, taken on trust).

    Args:
        repo_id: a dataset repository, e.g. `videocon/videocon`.
        revision: the commit (recorded by the caller; with `hub_dir` the folder is taken to be that commit).
        dest: where the files go; huggingface_hub keeps its resume state in `dest/.cache/`.
        hub_dir: offline source: `hub_dir/<repo_id>/` laid out exactly like the repository.
        allow_patterns: only the files matching one of these globs.
        force: download again even what is already complete in `dest`.
    """
    dest = Path(dest)
    if hub_dir is None:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError

        try:
            got = Path(snapshot_download(repo_id, repo_type="dataset", revision=revision, local_dir=dest,
                                         allow_patterns=allow_patterns, force_download=force))
            return got, downloaded_commit(repo_id, revision, got)
        except (HfHubHTTPError, LocalEntryNotFoundError) as exc:
            gated = (" (a gated dataset: accept its terms on the hub page, then log in with `hf auth login`)"
                     if isinstance(exc, GatedRepoError) else "")
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(f"https://huggingface.co/datasets/{repo_id}", f"cannot download revision {revision}{gated}: "
                            f"{first}; what was downloaded stays in {dest} and the next run resumes it") from exc
    src = Path(hub_dir) / repo_id
    if not src.is_dir():
        raise DataError(src, f"no local copy of the hub repository {repo_id} here (--hub-dir must hold <owner>/<name>/ "
                             "laid out like the repository)")
    for rel in hub_files(src):
        if allow_patterns is None or any(fnmatch.fnmatch(rel, p) for p in allow_patterns):
            copy_file(src / rel, dest / rel)
    return dest, revision


def downloaded_commit(repo_id: str, revision: str, snap: Path) -> str:
    """The commit the files in `snap` are of, from huggingface_hub's record beside each downloaded file; a DataError
    unless every file is of the asked `revision`. Offline, huggingface_hub hands back whatever an earlier run left in
    the folder, without a word about its commit: that must never be recorded as the asked revision."""
    from huggingface_hub._local_folder import read_download_metadata  # the record snapshot_download itself keeps

    commits = {}
    for rel in hub_files(snap):
        meta = read_download_metadata(snap, rel)
        commits[rel] = meta.commit_hash if meta is not None else None
    found = sorted({c or "an unknown revision (no download record)" for c in commits.values()})
    if not commits or any(c is None or not (c.startswith(revision) or revision.startswith(c)) for c in commits.values()):
        shown = ", ".join(c[:12] if len(c) == 40 else c for c in found) or "no files"
        raise DataError(f"https://huggingface.co/datasets/{repo_id}",
                        f"asked for revision {revision}, but the files in {snap} are of {shown}: the hub did not "
                        "answer (offline?) or the folder holds an earlier download. Run again with the hub reachable, "
                        "or ask for the revision the folder holds by name (--revision)")
    (commit,) = set(commits.values())
    return commit


def copy_file(src: Path, dest: Path) -> None:
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)


def _listing(snap: Path, limit: int = 8) -> str:
    files = hub_files(snap)
    shown = ", ".join(files[:limit]) + (f" and {len(files) - limit} more" if len(files) > limit else "")
    return shown or "no files"


# ---------------------------------------------------------------- VideoCon


def convert_videocon(snap: Path, root: DataRoot) -> tuple[dict[str, list[str]], list[str]]:
    """Copy the entailment CSV into the layout after the loader has read it (repeated rows kept: the release has
    them); returns ({written file: [its sources]}, the CSV's distinct videopaths in order)."""
    src = snap / VIDEOCON_CSV
    if not src.is_file():
        raise DataError(snap, f"the VideoCon snapshot has no {VIDEOCON_CSV} (files: {_listing(snap)})")
    rows = load_videocon(src, duplicates="keep")
    copy_file(src, root.videocon_csv)
    return {str(root.videocon_csv): [str(src)]}, list(dict.fromkeys(r.videopath for r in rows))


# ---------------------------------------------------------------- VELOCITI


def convert_velociti(snap: Path, root: DataRoot) -> dict[str, list[str]]:
    """Write `velociti/<test>.json` for the eight tests and `velociti/videos/<video_id>.mp4`; returns
    {written file: [its sources]}. Raises DataError naming the file and row of anything it cannot convert."""
    written: dict[str, list[str]] = {}
    v1 = _v1_files(snap)
    if v1 is not None:  # the snapshot already holds our format: read each file, copy it
        for test, path in v1.items():
            load_velociti_test(path, test)
            copy_file(path, root.velociti_test(test))
            written[str(root.velociti_test(test))] = [str(path)]
        tests = {t: read_json_strict(root.velociti_test(t)) for t in TESTS}
    else:
        tables = _tables(snap)
        tests = velociti_tests(_rows(tables))
        for test, data in tests.items():
            write_text(root.velociti_test(test), json.dumps(data, indent=1, ensure_ascii=False) + "\n")
            written[str(root.velociti_test(test))] = [str(t) for t in tables]
        for test in TESTS:  # the written files must load
            load_velociti_test(root.velociti_test(test), test)
    wanted = {vid for data in tests.values() for vid in data}
    wanted |= {ev["neg_vid"] for ev_map in tests[CONTROL].values() for ev in ev_map.values()}
    written.update(extract_videos(snap, wanted, root.velociti_videos))
    return written


def _v1_files(snap: Path) -> dict[str, Path] | None:
    """`<test>.json` for every v1 test when the snapshot holds all eight (each once), else None."""
    found: dict[str, list[Path]] = defaultdict(list)
    for rel in hub_files(snap):
        name = PurePosixPath(rel)
        if name.suffix == ".json" and name.stem in TESTS:
            found[name.stem].append(snap / rel)
    if set(found) != set(TESTS):
        return None
    repeated = [paths for paths in found.values() if len(paths) > 1]
    if repeated:
        raise DataError(snap, f"the VELOCITI test file {repeated[0][0].name} appears {len(repeated[0])} times: "
                              f"{', '.join(str(p) for p in repeated[0])}")
    return {t: found[t][0] for t in TESTS}


def _tables(snap: Path) -> list[Path]:
    tables = []
    for rel in hub_files(snap):
        path = snap / rel
        if path.suffix not in _TABLE_SUFFIXES or rel.lower() == "readme.md":
            continue
        if path.suffix == ".json" and not isinstance(read_json_strict(path), list):
            continue  # an object (e.g. dataset_info.json) is not a table of rows
        tables.append(path)
    if not tables:
        raise DataError(snap, "the VELOCITI snapshot has neither a table of rows (*.parquet, *.csv, *.jsonl or a JSON "
                              f"list with columns {', '.join(VELOCITI_COLUMNS)}) nor the v1 per-test JSON files "
                              f"({', '.join(t + '.json' for t in TESTS)}); files: {_listing(snap)}")
    return tables


def read_table(path: Path) -> list[dict[str, Any]]:
    """The rows of one table file; every row must have the VELOCITI columns."""
    if path.suffix == ".csv":
        return read_csv(path, VELOCITI_COLUMNS)
    if path.suffix == ".parquet":
        try:
            import pandas as pd

            records = pd.read_parquet(path).to_dict("records")
        except ImportError as exc:
            raise DataError(path, f"a parquet table: reading it needs pyarrow (pip install pyarrow): {exc}") from exc
        except Exception as exc:  # pyarrow's own errors: a cut or altered file
            raise DataError(path, f"not a readable parquet file ({type(exc).__name__}: {exc})") from exc
    elif path.suffix == ".jsonl":
        records = []
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(path, f"malformed JSON line: {exc.msg}", row=i) from exc
    else:
        records = read_json_strict(path)
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise DataError(path, f"expected an object per row, found {type(rec).__name__}", row=i)
        missing = [c for c in VELOCITI_COLUMNS if c not in rec]
        if missing:
            raise DataError(path, f"missing column(s) {missing}; found {sorted(rec)}", row=i, key=missing[0])
    return records


def _rows(tables: list[Path]) -> Iterator[tuple[Path, int, dict[str, Any]]]:
    for path in tables:
        for i, rec in enumerate(read_table(path)):
            yield path, i, rec


def _text(path: Path, row: int, rec: dict, key: str) -> str:
    value = rec.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DataError(path, f"expected non-empty text, found {value!r}", row=row, key=key)
    return value


def _video_id(path: Path, row: int, rec: dict) -> str:
    vid = _text(path, row, rec, "video_id").strip()
    return vid[: -len(".mp4")] if vid.endswith(".mp4") else vid  # the hub's scripts strip the extension too


def velociti_tests(rows) -> dict[str, dict]:
    """Rows of the flat hub table -> {test: v1 JSON object}, in row order.

    control rows need the video their negative caption belongs to (`neg_vid`): taken from a `neg_vid` column when
    the table has one, else from the one other video whose positive caption (in any test) is that text; a row
    where this is not exactly one video is an error, never a guess.
    """
    rows = list(rows)
    tests: dict[str, dict] = {t: {} for t in TESTS}
    owners: dict[str, set[str]] = defaultdict(set)  # positive caption -> videos it describes
    for path, i, rec in rows:
        owners[_text(path, i, rec, "pos")].add(_video_id(path, i, rec))
    for path, i, rec in rows:
        name = str(rec["test_name"]).strip()
        test = HUB_TEST_NAMES.get(name, name)
        if test not in TESTS:
            known = sorted(set(TESTS) | set(HUB_TEST_NAMES))
            raise DataError(path, f"unknown test_name {name!r}; known: {', '.join(known)}", row=i, key="test_name")
        vid, event = _video_id(path, i, rec), str(rec["event"]).strip()
        if not event:
            raise DataError(path, "empty event", row=i, key="event")
        pos, neg = _text(path, i, rec, "pos"), _text(path, i, rec, "neg")
        if test == CONTROL:
            entry = {"pos_cap": pos, "neg_cap": neg, "neg_vid": _neg_video(path, i, rec, vid, neg, owners)}
        else:
            entry = {"pos": pos, "neg": neg}
        events = tests[test].setdefault(vid, {})
        if event in events:
            raise DataError(path, f"repeated ({name}, {vid}, {event}): one caption pair per test, video and event",
                            row=i, key="event")
        events[event] = entry
    empty = [t for t in TESTS if not tests[t]]
    if empty:
        raise DataError(rows[0][0] if rows else Path("."), f"no rows for the VELOCITI test(s) {', '.join(empty)} "
                        f"(test_name values map as {HUB_TEST_NAMES})")
    return tests


def _neg_video(path: Path, row: int, rec: dict, vid: str, neg: str, owners: dict[str, set[str]]) -> str:
    if rec.get("neg_vid") not in (None, ""):
        return str(rec["neg_vid"]).strip().removesuffix(".mp4")
    candidates = sorted(owners.get(neg, set()) - {vid})
    if len(candidates) != 1:
        found = f"{len(candidates)} ({', '.join(candidates[:3])})" if candidates else "none"
        raise DataError(path, "a control row names no neg_vid, and its negative caption is the positive caption of "
                              f"exactly one other video in none of the tests (found {found}); the video it belongs "
                              "to cannot be told", row=row, key="neg")
    return candidates[0]


# ---------------------------------------------------------------- videos inside a snapshot


def _members(snap: Path) -> Iterator[tuple[str, str, int, Callable[[], Any]]]:
    """(video file name, where it is, size, open()) for every .mp4 in the snapshot, inside archives too."""
    for rel in hub_files(snap):
        path = snap / rel
        if rel.endswith(".mp4"):
            yield path.name, str(path), path.stat().st_size, lambda path=path: open(path, "rb")
        elif rel.endswith(".zip"):
            try:
                archive = zipfile.ZipFile(path)
            except zipfile.BadZipFile as exc:
                raise DataError(path, f"not a readable zip archive ({exc}): truncated or altered?") from exc
            with archive:  # open while the caller copies the members out
                for info in archive.infolist():
                    if not info.is_dir() and info.filename.endswith(".mp4"):
                        yield (PurePosixPath(info.filename).name, f"{path}:{info.filename}", info.file_size,
                               lambda a=archive, i=info: a.open(i))
        elif ".tar" in PurePosixPath(rel).suffixes:
            try:
                archive = tarfile.open(path)
                members = archive.getmembers()
            except (tarfile.TarError, EOFError) as exc:
                raise DataError(path, f"not a readable tar archive ({exc}): truncated or altered?") from exc
            with archive:
                for info in members:
                    if info.isfile() and info.name.endswith(".mp4"):
                        yield (PurePosixPath(info.name).name, f"{path}:{info.name}", info.size,
                               lambda a=archive, i=info: a.extractfile(i))


def extract_videos(snap: Path, wanted: set[str], dest_dir: Path) -> dict[str, list[str]]:
    """Write `dest_dir/<video_id>.mp4` for every wanted id from the snapshot's archives or loose files; other
    members (e.g. VELOCITI's 4 s event clips `<id>_p1.mp4`) are skipped. Raises DataError listing missing ids."""
    written: dict[str, list[str]] = {}
    sizes: dict[str, tuple[int, str]] = {}
    for name, where, size, opener in _members(snap):
        vid = name[: -len(".mp4")]
        if vid not in wanted:
            continue
        if vid in sizes:  # the same clip twice is fine; two different clips under one id are not
            if sizes[vid][0] != size:
                raise DataError(where, f"a second, different video named {name} (first: {sizes[vid][1]})")
            continue
        sizes[vid] = (size, where)
        dest = dest_dir / name
        try:
            with opener() as src, atomic_path(dest) as tmp, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:  # a CRC or length check failed
            raise DataError(where, f"cannot extract ({exc}): the archive is truncated or altered") from exc
        written[str(dest)] = [where]
    missing = sorted(wanted - set(sizes))
    if missing:
        shown = ", ".join(f"{m}.mp4" for m in missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise DataError(snap, f"{len(missing)} of {len(wanted)} videos the annotations name are in no archive "
                              f"(*.zip, *.tar*) or .mp4 file of the snapshot: {shown}; files: {_listing(snap)}")
    return written

