#!/bin/bash
# The shipped bundle with the recipe's current TA-Tok, on an NVIDIA GPU, as one prepared command for the device
# machine (training/retokenize.py says why; docs/training.md, "TA-Tok pooling of the miniature"):
#
#   OUT=/some/dir bash training/gpu_retokenize.sh [TA_MINUTES=1.5] [MINUTES=5.5]
#
# The new TA-Tok first (TA_MINUTES), then two processes side by side for MINUTES each: the de-tokenizer (VQ-VAE and
# AR-DTok) and the LLM on the new image tokens. About 9.5 minutes in all with the defaults, inside one call's
# 10-minute limit. $OUT receives tatok.npz, llm.npz and detok.npz (each under 16 MiB), times.json and the logs;
# where Node is, `retokenize.py --part export --weights-dir OUT` builds the bundle and checks it.
#
# DIALECT_DRY_RUN=1 runs the same plumbing on the CPU with tiny sizes (a few minutes), to test it.
set -euo pipefail
cd "$(dirname "$0")/.."
TA_MINUTES=${1:-1.5}
MINUTES=${2:-5.5}
OUT=${OUT:?set OUT to the folder that receives the results}
RUN=${DIALECT_RUN_DIR:-/tmp/dialect-gpu-retokenize}
PYTHON=${DIALECT_PYTHON:-python3}
mkdir -p "$OUT" "$RUN"

if [ "${DIALECT_DRY_RUN:-0}" = 1 ]; then
  common=(--device cpu --threads 1)
  ta_args=(--pool 3000 --workers 2)
  detok_args=(--vq-batch 32 --ar-batch 32)
  llm_args=(--records 2000 --workers 2)
else
  common=(--device cuda)
  ta_args=(--workers 12)
  detok_args=()
  llm_args=(--workers 8)
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
"$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'

export PYTHONPATH=training PYTHONUNBUFFERED=1
start=$(date +%s)
retok() { "$PYTHON" training/retokenize.py --out "$RUN" "${common[@]}" "$@"; }
retok --part ta-tok --minutes "$TA_MINUTES" "${ta_args[@]}" 2>&1 | tee "$OUT/ta-tok.log" | grep -v " step " || true
grep -q '"ta-tok"' "$RUN/state.json" 2>/dev/null || { echo "the TA-Tok part failed"; tail -n 20 "$OUT/ta-tok.log"; exit 1; }

retok --part detok --minutes "$MINUTES" "${detok_args[@]}" > "$OUT/detok.log" 2>&1 &
detok_pid=$!
retok --part unified --minutes "$MINUTES" "${llm_args[@]}" > "$OUT/unified.log" 2>&1 &
unified_pid=$!
# Progress while both run: the last line of each log every 30 s (the device's reply holds only the output's tail).
while kill -0 "$detok_pid" 2>/dev/null || kill -0 "$unified_pid" 2>/dev/null; do
  sleep 30
  echo "--- $(( $(date +%s) - start )) s"; tail -q -n 1 "$OUT/detok.log" "$OUT/unified.log"
done
status=0
wait "$detok_pid" || { echo "the de-tokenizer part failed"; status=1; }
wait "$unified_pid" || { echo "the unified part failed"; status=1; }
tail -n 5 "$OUT/detok.log" "$OUT/unified.log"
[ "$status" = 0 ] && retok --part weights --weights-dir "$OUT"
echo "finished after $(( $(date +%s) - start )) s (exit $status)"
ls -l "$OUT"
exit "$status"
