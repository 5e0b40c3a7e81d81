"""The paper preset's dress rehearsal on any CPU: its whole path, with the real model's tokenizer, on real files.

Until now the paper preset ran only as a benchmark at 7B shape; tokenisation with the real vocabulary, the answer
position, the `<video>` expansion to 2,056 tokens and the loaders on real files had never run together.
`build_rehearsal(fixtures, out)` writes two things:

- `out/hub/`: a Hugging Face hub cache that holds `LanguageBind/Video-LLaVA-7B-hf` at the pinned revision, but
  with random weights at a tiny size: transformers' own Video-LLaVA classes, the Llama-2 SentencePiece vocabulary
  with `<image>` = 32000, `<video>` = 32001 and `<pad>` = 32002 added as the hub repository's conversion adds them
  (BOS on, left padding, embeddings padded to 32,064 rows), CLIP processing at 224 px with patch 14 and the CLS
  token kept per frame, so 8 frames expand to 8 x 257 = 2,056 video tokens, as in the real model.
- `out/data/`: a data_root in the paper layout from real files: the first VideoCon rows of `hacalib.samples`
  (the last third relabelled `test` for the held-out evaluations, the last one repeated verbatim as the released
  CSV repeats rows), VELOCITI-format tests and MSRVTT-QA-format
  questions written from real VideoCon captions, the real SSv2-Temporal matrix cut to its first six queries with one positive video each,
  and every video a copy of VideoCon's real example clip, re-encoded to 320x180 H.264 once so that the many decodes
  stay fast (the processor's resize and crop run as for any real video).

- `out/videochat2/`: the same for the `videochat2-7b` preset: a tiny random-weight VideoChat2 with the real
  Mistral vocabulary and the paper checkpoint's geometry (`build_tiny_videochat2_7b`: 224 px, patch 16, 96 query
  tokens, the Q-Former's bert-base-uncased instruction ids), saved as `haca convert-videochat2` saves the real one.

Then the paper presets' code runs unchanged, offline; `from_pretrained` finds the tiny model where the real one
would be:

    HF_HUB_OFFLINE=1 HF_HUB_CACHE=out/hub haca reproduce --preset videollava-7b --smoke --data-root out/data
    haca reproduce --preset videochat2-7b --smoke --data-root out/data --model-path out/videochat2

May import: `hacalib.data`, `hacalib.io`, `hacalib.models`, `hacalib.prompts`, `hacalib.samples`.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

from .data.velociti import TESTS as VELOCITI_TESTS
from .io import write_json, write_text
from .models.videollava import VIDEOLLAVA_7B_HUB_ID, VIDEOLLAVA_7B_REVISION
from .samples import SSV2_TEMPORAL_MATRIX, VIDEOCON_SAMPLE

CLIP = "videocon/example/y5xuvHpDPZQ_000005_000015.mp4"  # VideoCon's real example clip, under ../shared/fixtures
TOKENIZER = "tokenizers/llama2/tokenizer.model"  # the Llama-2 vocabulary (test use only: not in the project)
MISTRAL_TOKENIZER = "tokenizers/mistral_v1/tokenizer.model"  # Mistral v0.1/v0.2's (VideoChat2's language model)
VIDEOCON_ROWS = 18  # rows of the shipped sample; the last third become the held-out split
SSV2_QUERIES = 6  # SSv2-Temporal queries kept, each with one positive video (the rest of its row negatives)
SIZE = (320, 180)  # the re-encoded clip's frame size (16:9, as the original 1280x720)


def build_rehearsal(fixtures: str | Path, out: str | Path) -> dict[str, Path]:
    """Write the hub cache (tiny Video-LLaVA-7B-hf) and the data root under `out`; returns their paths and the
    environment `haca reproduce` needs. Missing fixtures raise FileNotFoundError naming the file."""
    fixtures, out = Path(fixtures), Path(out)
    for rel in (CLIP, TOKENIZER, MISTRAL_TOKENIZER):
        if not (fixtures / rel).is_file():
            raise FileNotFoundError(f"rehearsal needs {fixtures / rel} (the team's ../shared/fixtures)")
    out.mkdir(parents=True, exist_ok=True)
    clip = out / "clip_320x180.mp4"
    if not clip.is_file():
        reencode(fixtures / CLIP, clip, SIZE)
    hub = out / "hub"
    snapshot = write_hub_model(fixtures / TOKENIZER, hub)
    data = write_data_root(clip, out / "data")
    videochat2 = write_videochat2_model(fixtures / MISTRAL_TOKENIZER, out / "videochat2")
    return {"hub": hub, "snapshot": snapshot, "data_root": data, "clip": clip, "videochat2": videochat2}


def env(paths: dict[str, Path]) -> dict[str, str]:
    """The environment variables under which `from_pretrained` reads the rehearsal's hub cache, offline."""
    return {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(paths["hub"]), "TRANSFORMERS_OFFLINE": "1"}


# ----------------------------------------------------------------------------- the model


def write_hub_model(tokenizer_model: Path, hub: Path) -> Path:
    """Save the tiny model where the hub cache keeps the pinned revision of Video-LLaVA-7B-hf; returns the
    snapshot folder. An existing snapshot is kept (the model is a pure function of the tokenizer and seed)."""
    repo = hub / ("models--" + VIDEOLLAVA_7B_HUB_ID.replace("/", "--"))
    snapshot = repo / "snapshots" / VIDEOLLAVA_7B_REVISION
    if (snapshot / "config.json").is_file():
        return snapshot
    from .models import save_model
    from .models.tiny7b import build_tiny_videollava_7b_hf

    model, processor = build_tiny_videollava_7b_hf(tokenizer_model)
    save_model(model, processor, snapshot)
    write_text(repo / "refs" / "main", VIDEOLLAVA_7B_REVISION)
    return snapshot


def write_videochat2_model(tokenizer_model: Path, folder: Path) -> Path:
    """Save the tiny VideoChat2 (real Mistral vocabulary, paper geometry) as `--model-path` of `videochat2-7b`;
    an existing one is kept (a pure function of the tokenizer and seed)."""
    if (folder / "config.json").is_file():
        return folder
    from .models import save_model
    from .models.videochat2.tiny import build_tiny_videochat2_7b

    model, processor = build_tiny_videochat2_7b(tokenizer_model)
    save_model(model, processor, folder)
    return folder


# ----------------------------------------------------------------------------- the data


def reencode(src: Path, dst: Path, size: tuple[int, int]) -> None:
    """Decode every frame of `src` and write it again as H.264 at `size` (same frame rate), atomically."""
    import av

    from .io import atomic_path

    with av.open(str(src)) as inp, atomic_path(dst) as tmp:
        stream_in = inp.streams.video[0]
        with av.open(str(tmp), "w", format="mp4") as out:
            stream = out.add_stream("libx264", rate=stream_in.average_rate)
            stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
            for frame in inp.decode(stream_in):
                out.mux(stream.encode(frame.reformat(width=size[0], height=size[1], format="yuv420p")))
            out.mux(stream.encode(None))


def _link(clip: Path, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        shutil.copyfile(clip, path)  # a copy, not a link: every loader sees an ordinary file


def write_data_root(clip: Path, root: Path) -> Path:
    """The paper layout (`hacalib.data.layout`) from real text and the real clip; see the module docstring."""
    with open(VIDEOCON_SAMPLE, newline="", encoding="utf-8") as f:
        rows = [r for _, r in zip(range(VIDEOCON_ROWS), csv.DictReader(f))]
    for i, r in enumerate(rows):
        r["split"] = "test" if i >= 2 * VIDEOCON_ROWS // 3 else "train"
        _link(clip, root / "videocon" / "videos" / r["videopath"])
    rows.append(dict(rows[-1]))  # the released CSV repeats rows verbatim; the preset must cope (duplicates="drop")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(root / "videocon" / "videocon_llm_entailment.csv", buf.getvalue())

    # VELOCITI format ({video_id: {event: {pos, neg}}}; control: the other video's caption and id), two videos per
    # test, captions from real VideoCon rows
    for t, test in enumerate(VELOCITI_TESTS):
        items = {}
        for k in range(2):
            r, other = rows[(2 * t + k) % len(rows)], rows[(2 * t + k + 1) % len(rows)]
            vid = f"v_{test}_{k}"
            items[vid] = {"Ev1": {"pos_cap": r["caption"], "neg_cap": other["caption"], "neg_vid": f"v_{test}_{1 - k}"}
                          if test == "control" else {"pos": r["caption"], "neg": r["neg_caption"]}}
            _link(clip, root / "velociti" / "videos" / f"{vid}.mp4")
        write_json(root / "velociti" / f"{test}.json", items)

    # SSv2-Temporal, one positive video per query (each video is the positive of exactly one query)
    with open(SSV2_TEMPORAL_MATRIX, newline="", encoding="utf-8") as f:
        matrix = list(csv.DictReader(f))
    keep = []
    for caption in list(dict.fromkeys(r["caption"] for r in matrix))[:SSV2_QUERIES]:
        keep.append(next(r["videopath"] for r in matrix if r["caption"] == caption and r["match"] == "1"))
    queries = set(list(dict.fromkeys(r["caption"] for r in matrix))[:SSV2_QUERIES])
    kept = [r for r in matrix if r["videopath"] in set(keep) and r["caption"] in queries]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["videopath", "caption", "match"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(kept)
    write_text(root / "ssv2" / "eval_ssv2_temporal.csv", buf.getvalue())
    for v in keep:
        _link(clip, root / "ssv2" / "videos" / v)

    # MSRVTT-QA format: questions VideoCon's example clip answers ("A soccer team ...")
    qa = [("what sport is played?", "soccer", "what"), ("who is on the field?", "team", "who"),
          ("how many teams play?", "two", "how"), ("where is the game?", "field", "where")]
    questions, answers = [], []
    for i, (q, a, kind) in enumerate(qa):
        qid = f"v_video9000_{i}"
        questions.append({"video_name": "video9000", "question": q, "question_id": qid})
        answers.append({"answer": a, "type": kind, "question_id": qid})
    write_json(root / "msrvtt_qa" / "test_q.json", questions)
    write_json(root / "msrvtt_qa" / "test_a.json", answers)
    _link(clip, root / "msrvtt_qa" / "videos" / "video9000.mp4")
    write_text(root / "REHEARSAL.md", "A rehearsal data root written by hacalib.rehearsal (see its docstring): real "
               "VideoCon text and clip, other benchmarks' formats filled from them. Not a benchmark.\n")
    return root


def main(argv: list[str] | None = None) -> int:
    """`haca rehearse --fixtures DIR --out DIR`: build the rehearsal and print the command that runs it."""
    import argparse

    p = argparse.ArgumentParser(prog="haca rehearse", description=__doc__.splitlines()[0])
    p.add_argument("--fixtures", default="../shared/fixtures", help="folder with the real clip and tokenizer")
    p.add_argument("--out", default="runs/rehearsal", help="where the hub cache and data root are written")
    args = p.parse_args(argv)
    paths = build_rehearsal(args.fixtures, args.out)
    variables = " ".join(f"{k}={v}" for k, v in env(paths).items())
    print(json.dumps({k: str(v) for k, v in paths.items()}))
    print(f"{variables} haca reproduce --preset videollava-7b --smoke --data-root {paths['data_root']}")
    print(f"haca reproduce --preset videochat2-7b --smoke --data-root {paths['data_root']} "
          f"--model-path {paths['videochat2']}")
    return 0
