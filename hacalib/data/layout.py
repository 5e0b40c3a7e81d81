"""The `data_root` layout shared by the real data and the toy world, and a check of what is present.

```
<data_root>/
  videocon/videocon_llm_entailment.csv    videocon/videos/<videopath>
  velociti/<test>.json                    velociti/videos/<video_id>.mp4
  ssv2/eval_ssv2_<name>.csv               ssv2/videos/<videopath>
  msrvtt_qa/test_q.json, test_a.json      msrvtt_qa/videos/<video_name>.mp4
  pretrain/pretrain.jsonl                 pretrain/videos/...          (toy world only)
  toyworld.json                                                        (toy world only)
```

May import: its own package's modules.
"""

from __future__ import annotations

from pathlib import Path

from .velociti import TESTS as VELOCITI_TESTS


class DataRoot:
    """Paths of every file and folder in the layout under `path`; nothing is read or created."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"DataRoot({str(self.path)!r})"

    # VideoCon
    @property
    def videocon_csv(self) -> Path:
        return self.path / "videocon" / "videocon_llm_entailment.csv"

    @property
    def videocon_videos(self) -> Path:
        return self.path / "videocon" / "videos"

    # VELOCITI
    @property
    def velociti_dir(self) -> Path:
        return self.path / "velociti"

    def velociti_test(self, test: str) -> Path:
        """The JSON file of one VELOCITI test (agent_iden, ..., control)."""
        if test not in VELOCITI_TESTS:
            raise ValueError(f"unknown VELOCITI test {test!r}; known: {', '.join(VELOCITI_TESTS)}")
        return self.velociti_dir / f"{test}.json"

    @property
    def velociti_videos(self) -> Path:
        return self.velociti_dir / "videos"

    # SSv2 retrieval
    @property
    def ssv2_dir(self) -> Path:
        return self.path / "ssv2"

    def ssv2_matrix(self, name: str) -> Path:
        """The retrieval CSV `eval_ssv2_<name>.csv` (e.g. temporal, events, toy)."""
        return self.ssv2_dir / f"eval_ssv2_{name}.csv"

    def ssv2_names(self) -> list[str]:
        """Names of the retrieval matrices present (score files `*_scores.csv` excluded), sorted."""
        if not self.ssv2_dir.is_dir():
            return []
        names = [p.stem[len("eval_ssv2_"):] for p in self.ssv2_dir.glob("eval_ssv2_*.csv")]
        return sorted(n for n in names if n and not n.endswith("_scores"))

    @property
    def ssv2_videos(self) -> Path:
        return self.ssv2_dir / "videos"

    # MSRVTT-QA
    @property
    def msrvtt_qa_questions(self) -> Path:
        return self.path / "msrvtt_qa" / "test_q.json"

    @property
    def msrvtt_qa_answers(self) -> Path:
        return self.path / "msrvtt_qa" / "test_a.json"

    @property
    def msrvtt_qa_videos(self) -> Path:
        return self.path / "msrvtt_qa" / "videos"

    # toy world only
    @property
    def pretrain_jsonl(self) -> Path:
        return self.path / "pretrain" / "pretrain.jsonl"

    @property
    def pretrain_videos(self) -> Path:
        return self.path / "pretrain" / "videos"

    @property
    def toyworld_manifest(self) -> Path:
        return self.path / "toyworld.json"

    def entries(self) -> dict[str, Path]:
        """Every checkable entry of the layout by name (SSv2 lists the matrices found, at least 'temporal')."""
        out = {"videocon": self.videocon_csv, "videocon/videos": self.videocon_videos}
        out.update({f"velociti/{t}": self.velociti_test(t) for t in VELOCITI_TESTS})
        out["velociti/videos"] = self.velociti_videos
        for name in self.ssv2_names() or ["temporal"]:
            out[f"ssv2/{name}"] = self.ssv2_matrix(name)
        out["ssv2/videos"] = self.ssv2_videos
        out["msrvtt_qa/questions"] = self.msrvtt_qa_questions
        out["msrvtt_qa/answers"] = self.msrvtt_qa_answers
        out["msrvtt_qa/videos"] = self.msrvtt_qa_videos
        out["pretrain"] = self.pretrain_jsonl
        out["pretrain/videos"] = self.pretrain_videos
        out["toyworld"] = self.toyworld_manifest
        return out

    def check(self) -> dict[str, bool]:
        """Name -> present, for every entry (a folder counts as present when it exists and is not empty)."""
        return {name: _present(p) for name, p in self.entries().items()}

    def benchmarks(self) -> dict[str, bool]:
        """Which benchmarks can run end to end (annotation files and a non-empty video folder present)."""
        c = self.check()
        return {
            "videocon": c["videocon"] and c["videocon/videos"],
            "velociti": all(c[f"velociti/{t}"] for t in VELOCITI_TESTS) and c["velociti/videos"],
            "ssv2": any(c[k] for k in c if k.startswith("ssv2/") and k != "ssv2/videos") and c["ssv2/videos"],
            "msrvtt_qa": c["msrvtt_qa/questions"] and c["msrvtt_qa/answers"] and c["msrvtt_qa/videos"],
        }

    def summary(self) -> str:
        """One line: where the data root is and how many of its entries are present (the missing ones named)."""
        entries = self.entries()
        missing = [name for name, p in entries.items() if not _present(p)]
        line = f"data_root {self.path}: {len(entries) - len(missing)} of {len(entries)} entries present"
        return line + (f"; missing: {', '.join(missing)}" if missing else "")

    def describe(self) -> str:
        """One line per entry: present/missing and its path (for notebooks to say what they can run)."""
        lines = [f"data_root: {self.path}"]
        for name, p in self.entries().items():
            lines.append(f"  {'present' if _present(p) else 'missing'}  {name:22s} {p}")
        return "\n".join(lines)


def _present(p: Path) -> bool:
    if p.is_dir():
        return any(p.iterdir())
    return p.is_file()
