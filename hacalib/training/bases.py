"""The toy base models that ship with the project: every user fine-tunes from the same bases.

Toy pretraining is bitwise repeatable on one CPU type but not across types (AVX2 vs AVX-512 rounding grows into
another model over thousands of steps; PROTOCOL.md "Environment"), so two users who each pretrain get different
base models. The project therefore commits its base models, one folder per pretraining seed:

    hacalib/bases/toy-videollava-seed<N>/
        model.safetensors, config.json, tokenizer and processor files   the model (`hacalib.models.load_model`)
        pretrain.json      the recipe (PretrainConfig), the cache key of the world it was trained on, the summary
        metrics.jsonl      the training log (loss every `log_every` steps)
        provenance.json    the machine (CPU model and capability), packages and commit that made it
        SHA256SUMS         sha256 of every other file

`install_shipped_base` copies a shipped base into the experiment's cache when its cache key equals the one the
current world and recipe give (so a changed world or recipe falls back to pretraining, never to a stale base),
after checking every file against SHA256SUMS. `ship_base` writes a freshly pretrained base into that folder
(`haca pretrain --ship`).

May import: `hacalib.io`, `hacalib.errors` (the provenance record comes from the caller: `hacalib.report` is a
later stage).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import DataError
from ..io import atomic_dir, read_json, sha256_file, write_json, write_text

SHIPPED_ROOT = Path(__file__).resolve().parents[1] / "bases"
SUMS = "SHA256SUMS"
MARKER = "pretrain.json"  # the pretraining marker (`hacalib.training.pretrain.MARKER`)


def shipped_dir(seed: int, family: str = "videollava", root: Path | None = None) -> Path:
    return Path(root or SHIPPED_ROOT) / f"toy-{family}-seed{seed}"


def shipped_seeds(family: str = "videollava", root: Path | None = None) -> list[int]:
    """The pretraining seeds whose base model ships with the project."""
    prefix = f"toy-{family}-seed"
    return sorted(int(p.name[len(prefix):]) for p in Path(root or SHIPPED_ROOT).glob(f"{prefix}*")
                  if (p / MARKER).is_file())


def read_sums(folder: Path) -> dict[str, str]:
    path = folder / SUMS
    out = {}
    for row, line in enumerate(path.read_text().splitlines()):
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name:
            raise DataError(path, "malformed line (expected '<sha256>  <file>')", row=row)
        out[name] = digest
    return out


def verify(folder: Path) -> None:
    """Every file SHA256SUMS lists is there with that sha256 (a DataError names the first that is not)."""
    for name, digest in read_sums(folder).items():
        path = folder / name
        if not path.is_file():
            raise DataError(path, f"missing: a file of the shipped base model (listed in {folder / SUMS})")
        if sha256_file(path) != digest:
            raise DataError(path, f"sha256 differs from {folder / SUMS}: the shipped base model was altered; "
                            "restore it with git or rebuild it with `haca pretrain --ship`")


def install_shipped_base(seed: int, key: str, out: str | Path, *, root: Path | None = None,
                         family: str = "videollava") -> bool:
    """Copy the shipped base of `seed` into `out` if it was trained for cache key `key`; False when none fits.

    A shipped base made from another world or recipe (other key) is not used: the caller pretrains instead.
    """
    src = shipped_dir(seed, family, root)
    if not (src / MARKER).is_file() or read_json(src / MARKER).get("cache_key") != key:
        return False
    verify(src)
    names = list(read_sums(src)) + [SUMS]
    with atomic_dir(Path(out)) as tmp:
        for name in names:
            shutil.copyfile(src / name, tmp / name)  # the user's umask, not the source's mode
    return True


def ship_base(trained: str | Path, seed: int, provenance: dict, *, root: Path | None = None,
              family: str = "videollava") -> Path:
    """Write a finished pretraining folder (its files, not its eval/ results) as the shipped base of `seed`."""
    trained = Path(trained)
    if not (trained / MARKER).is_file():
        raise DataError(trained / MARKER, "not a finished pretraining run")
    dst = shipped_dir(seed, family, root)
    files = sorted(p for p in trained.iterdir() if p.is_file() and p.name not in (SUMS, "provenance.json"))
    with atomic_dir(dst) as tmp:
        for path in files:
            shutil.copyfile(path, tmp / path.name)
        write_json(tmp / "provenance.json", provenance)
        listed = sorted([*(p.name for p in files), "provenance.json"])
        write_text(tmp / SUMS, "".join(f"{sha256_file(tmp / n)}  {n}\n" for n in listed))
    return dst
