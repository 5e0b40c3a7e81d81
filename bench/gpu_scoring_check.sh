#!/usr/bin/env bash
# One prepared device run for P(yes) scoring at Video-LLaVA-7B shape (random weights, bf16, built once on the GPU):
# pairs/s of packed (dense block mask, SDPA) and cascade (prefixes once, flash SDPA + log-sum-exp merge) at 1 and 4
# videos a forward, and packed with FlexAttention (if it compiles within its timeout), 32 captions per video, each
# with its max |P(yes) diff| against naive one-forward-per-pair (the batch-1 baseline, run twice: warm-up + one timed
# run). Issue 18's bar: >= 400 pairs/s.
# Usage: bash bench/gpu_scoring_check.sh [7b|small]   (small: the same run on the CPU with the toy model, to check
# the script). Expected on an H200: about 1 minute to build the model, under 4 minutes in all.
# Lines starting with '#' report each method as it finishes, so a run cut short still shows what was measured.
set -uo pipefail
shape="${1:-7b}"
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python3}"
out="${OUT:-/tmp}"
if [ "$shape" = 7b ]; then
  nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader || true
  sizes=(--videos 8 --captions 32 --repeats 2 --naive-repeats 1 --skip-batched-naive --packed-batch 1,4 --flex
         --flex-timeout 90)
  limit=270
else
  sizes=(--videos 4 --captions 8 --repeats 1 --naive-repeats 1 --skip-batched-naive --packed-batch 1,4 --flex
         --flex-timeout 90 --threads 1)
  limit=600
fi
t0=$(date +%s)
timeout "$limit" "$PY" bench/scoring.py --shape "$shape" "${sizes[@]}" 2>"$out/scoring_check.err" | tee "$out/scoring_check.out"
rc=${PIPESTATUS[0]}
echo "scoring check: $(( $(date +%s) - t0 )) s, exit status $rc"
[ "$rc" -eq 0 ] || tail -5 "$out/scoring_check.err"
"$PY" - "$out/scoring_check.out" <<'PYEOF'
import json, sys
lines = open(sys.argv[1]).read().strip().splitlines()
try:
    r = json.loads(lines[-1])
except (IndexError, ValueError):
    sys.exit("no JSON line (see the # lines above and scoring_check.err)")
if "improved_flex_per_s" in r:
    flex = "%8.1f pairs/s (diff %.1e)" % (r["improved_flex_per_s"], r["max_abs_diff_flex"])
else:
    flex = r.get("flex_error", "not run")
print("summary: %s shape on %s, %d videos x %d captions" % (r["shape"], r["device"], r["videos"], r["captions_per_video"]))
print("  naive (batch 1) %8.1f pairs/s" % r["baseline_per_s"])
for b, row in r["by_batch"].items():
    print("  %2s video(s) a forward: packed  %8.1f pairs/s (diff %.1e)" % (b, row["packed_per_s"], row["max_abs_diff_packed"]))
    print("                         cascade %8.1f pairs/s (diff %.1e), %.2fx packed"
          % (row["cascade_per_s"], row["max_abs_diff_cascade"], row["cascade_vs_packed"]))
print("  flex (1 video a forward) %s" % flex)
PYEOF
exit "$rc"
