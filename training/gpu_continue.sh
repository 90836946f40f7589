#!/bin/bash
# Train the shipped bundle further on an NVIDIA GPU, as one prepared command for the device machine (docs/training.md,
# "Continuing on a GPU"): Python with PyTorch 2.x + CUDA, no Node, no internet, and only a few files come back.
#
#   OUT=/some/dir bash training/gpu_continue.sh [MINUTES]
#
# Two processes share the GPU for MINUTES (default 7) of training each, since either of these small models leaves
# most of it idle:
#   continue_unified.py  the unified LLM, on records drawn, rendered and batched by worker processes
#   retrain_detok.py     a new VQ-VAE and AR-DTok for the bundle's TA-Tok, on a pool of 200,000 images
# $OUT receives llm.npz and detok.npz (weights, under 16 MiB each), run.tar (each run's times.json, state.json and
# results) and the two logs. Back where Node is, each script's --from-weights exports its graphs into a bundle and
# checks them in onnxruntime-node (docs/training.md).
#
# DIALECT_DRY_RUN=1 runs the same plumbing on the CPU with tiny sizes (a few minutes), to test it.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-7}
LANES=${DIALECT_LANES:-llm detok}      # which of the two processes to run
OUT=${OUT:?set OUT to the folder that receives the results}
RUN=${DIALECT_RUN_DIR:-/tmp/dialect-gpu-continue}
PYTHON=${DIALECT_PYTHON:-python3}
mkdir -p "$OUT" "$RUN"

if [ "${DIALECT_DRY_RUN:-0}" = 1 ]; then
  llm_args=(--device cpu --threads 1 --records 2000 --workers 2)
  detok_args=(--device cpu --threads 1 --pool 3000 --roundtrip-n 48 --vq-batch 32 --ar-batch 32 --workers 2)
else
  llm_args=(--device cuda --records "${DIALECT_RECORDS:-200000}" --workers 8)
  detok_args=(--device cuda --workers 6)
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$RUN/gpu.txt" || true
fi
"$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' | tee -a "$RUN/gpu.txt"

export PYTHONPATH=training PYTHONUNBUFFERED=1
start=$(date +%s)
llm_pid= detok_pid=
[[ " $LANES " == *" llm "* ]] && "$PYTHON" training/continue_unified.py --from models/tar-shapes --out "$RUN/llm" "${llm_args[@]}" \
  --minutes "$MINUTES" --steps 1000000 --lr 4e-4 --records-seed 303000000 \
  --mix understand=0.26,generate=0.33,edit=0.29,multiturn=0.12 --weights-out "$OUT/llm.npz" \
  > "$OUT/llm.log" 2>&1 &
[[ " $LANES " == *" llm "* ]] && llm_pid=$!
[[ " $LANES " == *" detok "* ]] && "$PYTHON" training/retrain_detok.py --from models/tar-shapes --out "$RUN/detok" "${detok_args[@]}" \
  --minutes "$MINUTES" --weights-out "$OUT/detok.npz" > "$OUT/detok.log" 2>&1 &
[[ " $LANES " == *" detok "* ]] && detok_pid=$!
# Progress while both run: the last line of each log every 30 s (the device's reply holds only the output's tail).
while { [ -n "$llm_pid" ] && kill -0 "$llm_pid" 2>/dev/null; } || { [ -n "$detok_pid" ] && kill -0 "$detok_pid" 2>/dev/null; }; do
  sleep 30
  echo "--- $(( $(date +%s) - start )) s"; tail -q -n 1 "$OUT"/*.log
done
status=0
[ -z "$llm_pid" ] || wait "$llm_pid" || { echo "continue_unified.py failed"; status=1; }
[ -z "$detok_pid" ] || wait "$detok_pid" || { echo "retrain_detok.py failed"; status=1; }
echo "both finished after $(( $(date +%s) - start )) s (exit $status)"
tail -n 5 "$OUT"/*.log
tar -C "$RUN" -cf "$OUT/run.tar" --ignore-failed-read gpu.txt llm/times.json llm/state.json detok/times.json \
  detok/state.json detok/detok-results.json 2>/dev/null || true
ls -l "$OUT"
exit "$status"
