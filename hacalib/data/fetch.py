"""`haca fetch-data`: the real benchmark files under one data_root, with a manifest that says where each came from.

- VideoCon's annotations and VELOCITI come from the Hugging Face hub at a pinned commit (`hacalib.data.hub`): the
  repository files go to `<data_root>/.hub/<owner>/<name>/` (huggingface_hub resumes an interrupted download
  there), then are converted into the layout (`hacalib.data.layout`), every file written atomically.
- SSv2 and MSRVTT-QA are not redistributable, nor are VideoCon's videos: the user arranges what they downloaded
  in a source folder laid out like the data_root (`<src>/ssv2/eval_ssv2_temporal.csv`, `<src>/ssv2/videos/...`,
  `<src>/msrvtt_qa/test_q.json`, `<src>/videocon/videos/<videopath>`, ...); each file is checked, then linked
  (or copied) into the layout, and every missing one is named.

`<data_root>/fetch_manifest.json` records per dataset the request (repository, revision, source folder), every
file written with its size and sha256 (a linked file of the user's: its size and target) and what it was made
from. A dataset whose record is complete and whose files all match is not fetched again; a file that no longer
matches (truncated, altered, missing) is named in a DataError (`--refetch` fetches and converts it again).

May import: its own package's modules, `hacalib.errors`, `hacalib.io`.
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import shutil
from pathlib import Path
from typing import Callable

from ..errors import DataError, UsageError
from ..io import atomic_path, confined, read_json, sha256_file, short_name, write_json, write_text
from . import hub
from .layout import DataRoot
from .msrvtt_qa import load_msrvtt_qa
from .ssv2 import load_retrieval_matrix

DATASETS = ("videocon", "velociti", "ssv2", "msrvtt_qa")
HUB_DATASETS = ("videocon", "velociti")
MANIFEST = "fetch_manifest.json"
MISSING = "fetch_missing.txt"
HUB_CACHE = ".hub"
SSV2_MATRICES = ("temporal", "events")
MANIFEST_FORMAT = 1
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
# Commits seen on the hub pages (short ids only; the full ids could not be read offline): videocon/videocon
# 761b42e "Upload 2 files" (videocon_llm_entailment.csv, 2023-11-07), cd8c7ee (videocon_human.csv, 2023-11-08).
KNOWN_COMMITS = {"videocon": "761b42e or later (2023-11-07)", "velociti": "none recorded"}


def _rel(root: Path, path: str | Path) -> str:
    return Path(path).relative_to(root).as_posix()


def _record(path: Path) -> dict:
    return {"size": path.stat().st_size, "sha256": sha256_file(path)}


def place(src: Path, dest: Path, copy: bool) -> dict:
    """Link (or copy) one of the user's files into the layout, atomically; its manifest record. A full disk is
    reported as the folder being written, not the file being read."""
    if copy:
        try:
            with atomic_path(dest) as tmp:
                shutil.copyfile(src, tmp)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise OSError(errno.ENOSPC, f"no space left to copy {src.name} into", str(dest.parent)) from exc
            raise
        return {**_record(dest), "from": str(src)}
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{short_name(dest.name)}.{os.getpid()}.link")  # a 244-byte name leaves no room for more
    tmp.unlink(missing_ok=True)
    os.symlink(src.resolve(), tmp)
    os.replace(tmp, dest)
    # a linked file stays the user's: its size is recorded (a truncation is caught), hashing tens of GB is not
    return {"size": src.stat().st_size, "link": str(src.resolve())}


def verify(root: Path, section: dict) -> list[tuple[str, str]]:
    """(file, what is wrong) for every recorded file of a dataset that no longer matches its record."""
    bad = []
    for rel, rec in {**section.get("hub_files", {}), **section.get("files", {})}.items():
        path = root / rel
        try:
            size = path.stat().st_size
        except OSError:
            bad.append((rel, "missing"))
            continue
        if size != rec["size"]:
            bad.append((rel, f"{size} bytes, the manifest records {rec['size']} (truncated or altered)"))
        elif "sha256" in rec and sha256_file(path) != rec["sha256"]:
            bad.append((rel, f"sha256 differs from the manifest's {rec['sha256'][:12]}... (altered)"))
    return bad


class Fetcher:
    """One fetch-data run. `log` receives one line per step."""

    def __init__(self, out: str | Path, *, revisions: dict[str, str] | None = None, source_dir: str | Path | None = None,
                 hub_dir: str | Path | None = None, copy: bool = False, refetch: bool = False,
                 log: Callable[[str], None] = print):
        self.out = Path(out).absolute()  # huggingface_hub returns absolute paths; the manifest names them relative
        self.root = DataRoot(self.out)
        self.revisions = dict(revisions or {})
        self.source_dir = None if source_dir is None else Path(source_dir)
        self.hub_dir = None if hub_dir is None else Path(hub_dir)
        self.copy, self.refetch, self.log = copy, refetch, log
        self._resolved: dict[str, str] = {}  # dataset -> the commit its hub files were found to be of

    # ---- the run

    def run(self, only: tuple[str, ...] = DATASETS) -> dict:
        """Fetch the named datasets; returns the manifest. Raises DataError naming every file still missing."""
        only = tuple(dict.fromkeys(only))
        self._check(only)
        path = self.out / MANIFEST
        manifest = read_json(path) if path.is_file() else {"format": MANIFEST_FORMAT, "datasets": {}}
        if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
            raise DataError(path, f"not a fetch manifest of format {MANIFEST_FORMAT}; move it away to fetch afresh")
        todo, bad = [], []
        for name in only:  # verify everything first, so one error names every damaged file
            section = manifest["datasets"].get(name)
            if self.refetch or not section or section.get("request") != self._request(name) \
                    or section.get("status") != "complete":
                todo.append(name)
                continue
            problems = verify(self.out, section)
            bad += [(name, rel, why) for rel, why in problems]
            if not problems:
                self.log(f"{name}: up to date ({len(section.get('hub_files', {})) + len(section['files'])} files match "
                         f"{MANIFEST})")
        if bad:
            name, rel, why = bad[0]
            more = f"; {len(bad)} files differ in all: {', '.join(b[1] for b in bad[:5])}" if len(bad) > 1 else ""
            raise DataError(self.out / rel, f"{why} ({name} in {MANIFEST}){more}; run again with --refetch to fetch "
                                            "and convert it again")
        for name in todo:
            section = {"request": self._request(name), **getattr(self, f"_fetch_{name}")()}
            section["status"] = "incomplete" if section["missing"] else "complete"
            manifest["datasets"][name] = section
            write_json(path, manifest)  # after each dataset: a killed run keeps what was finished
            self.log(f"{name}: {len(section.get('hub_files', {}))} hub files, {len(section['files'])} files in the "
                     f"layout" + (f", {len(section['missing'])} missing" if section["missing"] else ""))
        # the list covers every dataset the manifest knows; the error only those asked for in this run
        lines = [f"{n}\t{m}" for n, s in manifest["datasets"].items() for m in s["missing"]]
        missing = {n: s["missing"] for n, s in manifest["datasets"].items() if n in only and s["missing"]}
        if lines:
            write_text(self.out / MISSING, "\n".join(lines) + "\n")
        if missing:
            where = str(self.source_dir) if self.source_dir else "a folder given with --source-dir"
            summary = "; ".join(f"{n}: {len(ms)} (e.g. {ms[0]})" for n, ms in missing.items())
            raise DataError(self.out / MISSING, f"{sum(map(len, missing.values()))} file(s) missing, expected under "
                                                f"{where}: {summary}; every one is listed in this file")
        if lines:
            return manifest
        (self.out / MISSING).unlink(missing_ok=True)
        return manifest

    def _check(self, only: tuple[str, ...]) -> None:
        unknown = [n for n in only if n not in DATASETS]
        if unknown or not only:
            raise UsageError(f"--only takes names from {', '.join(DATASETS)}; got {', '.join(only) or 'none'}")
        for name in HUB_DATASETS:
            rev = self.revisions.get(name)
            if name in only and (rev is None or not _COMMIT.match(rev)):
                raise UsageError(
                    f"{name}: give the hub commit to fetch as --revision {name}=<40-hex commit of {hub.REPOS[name]}> "
                    f"(got {rev!r}); pinning keeps the data of a table fixed. Known: {KNOWN_COMMITS[name]}. The newest: "
                    f"python -c \"from huggingface_hub import HfApi; print(HfApi().dataset_info('{hub.REPOS[name]}').sha)\"")
        if self.source_dir is not None and not self.source_dir.is_dir():
            raise UsageError(f"--source-dir {self.source_dir} is not a folder")
        if self.out.exists() and not self.out.is_dir():
            raise UsageError(f"--out {self.out} is not a folder")

    def _request(self, name: str) -> dict:
        if name in HUB_DATASETS:
            req = {"repo": hub.REPOS[name], "revision": self.revisions[name],
                   "from": f"local copy {self.hub_dir.resolve()}" if self.hub_dir else "huggingface_hub"}
            if name == "videocon":  # its videos come from the user's folder
                req["source_dir"] = str(self.source_dir.resolve()) if self.source_dir else None
            return req
        return {"source_dir": str(self.source_dir.resolve()) if self.source_dir else None, "copy": self.copy}

    # ---- per dataset: each returns {"hub_files", "files", "missing"} (paths relative to the data root)

    def _snapshot(self, name: str) -> tuple[Path, dict]:
        repo = hub.REPOS[name]
        dest = self.out / HUB_CACHE / repo
        patterns = hub.VIDEOCON_PATTERNS if name == "videocon" else None
        self.log(f"{name}: {repo} at {self.revisions[name][:12]} -> {dest}")
        snap, commit = hub.snapshot(repo, self.revisions[name], dest, hub_dir=self.hub_dir, allow_patterns=patterns,
                                    force=self.refetch)
        self._resolved[name] = commit if self.hub_dir is None else f"{commit} (a local copy, --hub-dir: not checked)"
        return snap, {_rel(self.out, snap / f): _record(snap / f) for f in hub.hub_files(snap)}

    def _converted(self, written: dict[str, list[str]]) -> dict:
        return {_rel(self.out, dest): {**_record(Path(dest)), "from": [self._from(s) for s in srcs]}
                for dest, srcs in written.items()}

    def _from(self, source: str) -> str:
        """A source named relative to the data root when it is inside it (an archive member keeps `:member`)."""
        path, sep, member = source.partition(":")
        try:
            return _rel(self.out, path) + sep + member
        except ValueError:
            return source

    def _fetch_videocon(self) -> dict:
        snap, hub_files = self._snapshot("videocon")
        written, videopaths = hub.convert_videocon(snap, self.root)
        files, missing = self._link_all("videocon/videos", videopaths, self.root.videocon_videos,
                                        self.root.videocon_csv)
        return {"hub_files": hub_files, "resolved_revision": self._resolved["videocon"],
                "files": {**self._converted(written), **files}, "missing": missing}

    def _fetch_velociti(self) -> dict:
        snap, hub_files = self._snapshot("velociti")
        written = hub.convert_velociti(snap, self.root)
        return {"hub_files": hub_files, "resolved_revision": self._resolved["velociti"],
                "files": self._converted(written), "missing": []}

    def _fetch_ssv2(self) -> dict:
        files, missing = {}, []
        for name in SSV2_MATRICES:
            rel = _rel(self.out, self.root.ssv2_matrix(name))
            src = self._source(rel)
            if src is None:
                missing.append(rel)
                continue
            matrix = load_retrieval_matrix(src)  # a malformed matrix is an error naming its row, before linking
            files[rel] = place(src, self.root.ssv2_matrix(name), copy=True)
            more, miss = self._link_all("ssv2/videos", list(matrix.videos), self.root.ssv2_videos, src)
            files.update(more)
            missing += [m for m in miss if m not in missing]
        return {"files": files, "missing": missing}

    def _fetch_msrvtt_qa(self) -> dict:
        q_rel, a_rel = (_rel(self.out, p) for p in (self.root.msrvtt_qa_questions, self.root.msrvtt_qa_answers))
        q_src, a_src = self._source(q_rel), self._source(a_rel)
        missing = [rel for rel, src in ((q_rel, q_src), (a_rel, a_src)) if src is None]
        if missing:
            return {"files": {}, "missing": missing + ["msrvtt_qa/videos/<video_name>.mp4 (named by test_q.json)"]}
        items = load_msrvtt_qa(q_src, a_src)
        files = {q_rel: place(q_src, self.root.msrvtt_qa_questions, copy=True),
                 a_rel: place(a_src, self.root.msrvtt_qa_answers, copy=True)}
        names = list(dict.fromkeys(f"{item.video_name}.mp4" for item in items))
        more, missing = self._link_all("msrvtt_qa/videos", names, self.root.msrvtt_qa_videos, q_src)
        return {"files": {**files, **more}, "missing": missing}

    def _source(self, rel: str) -> Path | None:
        if self.source_dir is None or not (self.source_dir / rel).is_file():
            return None
        return self.source_dir / rel

    def _link_all(self, folder: str, names: list[str], dest_dir: Path, origin: str | Path) -> tuple[dict, list[str]]:
        """Link `<src>/<folder>/<name>` to `dest_dir/<name>` for each name present; the missing ones by path. Every
        name comes from a data file (`origin`), so each is confined first: to `dest_dir` where it is written and to
        the source folder where it is read (`hacalib.io.confined`), all before the first link."""
        for name in names:
            confined(dest_dir, name, source=origin, key=name)
            if self.source_dir is not None:
                confined(self.source_dir / folder, name, source=origin, key=name)
        files, missing = {}, []
        for name in names:
            rel = f"{folder}/{name}"
            src = self._source(rel)
            if src is None:
                missing.append(rel)
            else:
                files[_rel(self.out, dest_dir / name)] = place(src, dest_dir / name, self.copy)
        return files, missing


def _revisions(values: list[str]) -> dict[str, str]:
    out = {}
    for value in values:
        name, sep, rev = value.partition("=")
        if not sep or name not in HUB_DATASETS:
            raise UsageError(f"--revision takes NAME=COMMIT with NAME one of {', '.join(HUB_DATASETS)}; got {value!r}")
        out[name] = rev.strip()
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="haca fetch-data", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="the data_root to write (created if absent)")
    p.add_argument("--only", default=",".join(DATASETS), help=f"comma-separated datasets (default {','.join(DATASETS)})")
    p.add_argument("--revision", action="append", default=[], metavar="NAME=COMMIT",
                   help="the hub commit (40 hex) for videocon / velociti; repeat for both; required for each fetched")
    p.add_argument("--source-dir", default=None,
                   help="a folder laid out like the data_root holding what is not on the hub: ssv2/, msrvtt_qa/, "
                        "videocon/videos/")
    p.add_argument("--hub-dir", default=None,
                   help="offline: a folder holding <owner>/<name>/ laid out like each hub repository, read instead of "
                        "downloading")
    p.add_argument("--copy", action="store_true", help="copy the source folder's videos instead of linking them")
    p.add_argument("--refetch", action="store_true", help="fetch and convert again even what the manifest says is done")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error instead of one line")
    return p


def main(argv: list[str] | None = None) -> int:
    """The `haca fetch-data` command; errors are raised (the CLI turns them into one line)."""
    args = build_parser().parse_args(argv)
    only = tuple(n.strip() for n in args.only.split(",") if n.strip())
    fetcher = Fetcher(args.out, revisions=_revisions(args.revision), source_dir=args.source_dir, hub_dir=args.hub_dir,
                      copy=args.copy, refetch=args.refetch)
    fetcher.run(only)
    print(f"data_root {args.out}: {', '.join(only)} complete; manifest {Path(args.out) / MANIFEST}")
    return 0
