#!/usr/bin/env bash
# Render committed notebooks as a reader sees them: nbconvert to HTML, then a headless Chromium screenshot of each.
#   bash experiments/render/screenshots.sh OUT_DIR [notebooks/0*.ipynb ...]
# Needs `chromium` on PATH (Debian: apt-get install chromium). Writes OUT_DIR/<name>.html and OUT_DIR/<name>.png.
set -euo pipefail
out="$1"; shift
notebooks=("$@"); [ ${#notebooks[@]} -gt 0 ] || notebooks=(notebooks/0*.ipynb)
mkdir -p "$out"
for nb in "${notebooks[@]}"; do
  name="$(basename "$nb" .ipynb)"
  .venv/bin/jupyter nbconvert --to html --output-dir "$out" "$nb" >/dev/null 2>&1
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1300,16000 \
    --screenshot="$out/$name.png" "file://$(realpath "$out/$name.html")" >/dev/null 2>&1
  echo "$out/$name.png"
done
