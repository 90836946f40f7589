#!/bin/bash
# The whole shapes-world recipe on an NVIDIA GPU, as one prepared command for the device machine (docs/training.md,
# "On a GPU"): Python with PyTorch 2.x + CUDA, no Node, no internet, and only a few result files come back.
#
#   OUT=/some/dir bash training/gpu_train.sh [MINUTES] [STEP_SCALE]
#
# MINUTES (default 8) is the wall-clock budget of the training stages together: every stage's CPU budget is scaled
# by MINUTES / (sum of the budgets), and a stage stops at that or at its step cap × STEP_SCALE (default 4),
# whichever comes first. The run's folder stays in /tmp (resumable: run the same command again); $OUT receives at
# most four files, each under 16 MiB:
#   llm.onnx            the bundle's largest graph
#   bundle-rest.tar     the rest of the bundle (manifest, tokenizer, the other graphs, pytorch.json)
#   run.tar             times.json, state.json, log.txt and the golden outputs of the ONNX parity check
#   train.log           the progress lines
# Back on a machine with Node: `node training/check_bundle.mjs BUNDLE GOLDEN` (the check stage's parity test,
# deferred here because the device has no Node), then `npm run eval:model -- --model BUNDLE`.
#
# DIALECT_DRY_RUN=1 runs the same plumbing on the CPU with the recipe's --smoke sizes (a few minutes), to test it.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-8}
STEP_SCALE=${2:-4}
OUT=${OUT:?set OUT to the folder that receives the results}
RUN=${DIALECT_RUN_DIR:-/tmp/dialect-gpu-run}
BUNDLE=$RUN/bundle
PYTHON=${DIALECT_PYTHON:-python3}
mkdir -p "$OUT" "$RUN"

if [ "${DIALECT_DRY_RUN:-0}" = 1 ]; then
  device=(--device cpu --smoke --lanes 1 --threads 2)
else
  device=(--device cuda --lanes 1 --step-scale "$STEP_SCALE"
          --time-scale "$("$PYTHON" -c "import sys; sys.path.insert(0, 'training'); import train_shapes as t; \
print(round($MINUTES / sum(m for _, m in t.PLAN.values()), 4))")")
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$RUN/gpu.txt" || true
fi
"$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' | tee -a "$RUN/gpu.txt"

start=$(date +%s)
set +e
PYTHONPATH=training "$PYTHON" -u training/train_shapes.py --out "$RUN" --bundle "$BUNDLE" "${device[@]}" 2>&1 | tee "$OUT/train.log"
status=${PIPESTATUS[0]}
set -e
echo "training command exit $status after $(( $(date +%s) - start )) s" | tee -a "$OUT/train.log"

if [ -f "$BUNDLE/manifest.json" ]; then
  cp "$BUNDLE/llm.onnx" "$OUT/llm.onnx"
  tar -C "$BUNDLE" --exclude=llm.onnx -cf "$OUT/bundle-rest.tar" .
fi
tar -C "$RUN" -cf "$OUT/run.tar" --ignore-failed-read times.json state.json log.txt gpu.txt golden 2>/dev/null || true
ls -l "$OUT"
exit "$status"
