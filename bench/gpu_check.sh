#!/usr/bin/env bash
# One prepared device run (issues 4, 6): the benchmarks at Video-LLaVA-7B shape, each printing its JSON line last.
# Usage: bash bench/gpu_check.sh [7b|small]   (small: the same commands on the CPU, to check the script)
# Sizes are modest so all three finish in about 5 minutes on an H100/H200 (model builds included).
set -uo pipefail  # no -e: a failing scoring run (e.g. FlexAttention) must not skip training
shape="${1:-7b}"
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python3}"
out="${OUT:-/tmp}"
if [ "$shape" = 7b ]; then
  nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader || true
  sizes_scoring=(--videos 2 --captions 32 --repeats 2 --flex)
  sizes_training=(--videos 4 --videos-per-step 1 --repeats 2)
  sizes_loop=(--steps 4 --batch 1)
else
  sizes_scoring=(--videos 2 --captions 8 --repeats 1 --flex --threads 1)
  sizes_training=(--videos 2 --videos-per-step 1 --repeats 1 --threads 1)
  sizes_loop=(--steps 3 --batch 1 --threads 1)
fi
t0=$(date +%s)
"$PY" bench/scoring.py --shape "$shape" "${sizes_scoring[@]}" 2>"$out/scoring.err" | tee "$out/scoring.out" | tail -1
echo "scoring: $(( $(date +%s) - t0 )) s"
t0=$(date +%s)
"$PY" bench/training.py --shape "$shape" "${sizes_training[@]}" 2>"$out/training.err" | tee "$out/training.out" | tail -1
echo "training: $(( $(date +%s) - t0 )) s"
t0=$(date +%s)
"$PY" bench/train_loop.py --shape "$shape" "${sizes_loop[@]}" 2>"$out/train_loop.err" | tee "$out/train_loop.out" | tail -1
echo "train_loop: $(( $(date +%s) - t0 )) s"
