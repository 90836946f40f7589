#!/bin/bash
# GPU benchmark of Dialect on the full Tar-1.5B architecture (random weights), one prepared script.
#
#   bash bench/gpu.sh prepare    # CPU machine with the npm registry: writes training/cache/gpubench/ (~50 MB):
#                                #   Node, onnxruntime-node 1.29.0 + its CUDA 13 provider (from
#                                #   com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9, via /work/shared/gpuprobe),
#                                #   sharp, and bench/gpu.ts bundled into one .mjs
#   bash bench/gpu.sh            # GPU machine (carry training/cache/gpubench): builds the bundles with the machine's
#                                #   PyTorch (bench/gpu_build.py), measures PyTorch eager and the TS runtime on CUDA,
#                                #   writes $OUT/{gpu.log,torch.json,ts.json,summary.md}
#   bash bench/gpu.sh rehearse   # CPU machine: the same run at "mini" size on the CPU provider, with this checkout's
#                                #   node_modules (checks the script end to end, numbers meaningless)
#
# On the device: run --carry training/cache/gpubench --timeout 590 'bash bench/gpu.sh'. Expected wall time 6–9 min
# (bundle build ~3–4, ORT session creation ~1–2, measurements ~2). Env: GPUBENCH_PROVIDER (cuda|webgpu, default
# cuda), GPUBENCH_PYTHON (default: the first python3/python that imports torch), GPUBENCH_TMP (default /tmp/gpubench),
# GPUBENCH_SIZE (full|mini; `GPUBENCH_SIZE=mini GPUBENCH_PROVIDER=cpu bash bench/gpu.sh` rehearses the device path —
# the carried Node, onnxruntime-node 1.29 and sharp — on a CPU machine).
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
D="$ROOT/training/cache/gpubench"
MODE="${1:-run}"
T="${GPUBENCH_TMP:-/tmp/gpubench}"
O="${OUT:-$T/out}"
mkdir -p "$T" "$O"

unxz_py() { "$PY" - "$@" <<'PYEOF'
import lzma, shutil, sys, tarfile
src, dst = sys.argv[1], sys.argv[2]
if src.endswith('.tar.xz'):
    with tarfile.open(src, 'r:xz') as t: t.extractall(dst)
else:
    with lzma.open(src) as f, open(dst, 'wb') as g: shutil.copyfileobj(f, g, 1 << 24)
PYEOF
}

find_python() {
  for p in ${GPUBENCH_PYTHON:-} python3 python /usr/bin/python3 "$ROOT/training/py"; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import torch' >/dev/null 2>&1; then echo "$p"; return; fi
  done
}

bundle_app() {  # $1 = destination folder for gpu-bench.mjs
  mkdir -p "$1"
  "$ROOT/node_modules/.bin/esbuild" "$ROOT/bench/gpu.ts" --bundle --platform=node --format=esm --target=node20 \
    --external:onnxruntime-node --external:sharp --outfile="$1/gpu-bench.mjs" --log-level=warning
}

if [ "$MODE" = prepare ]; then
  set -e
  mkdir -p "$D"
  GP="${GPUPROBE_DIR:-/work/shared/gpuprobe}"
  if [ ! -f "$D/node.xz" ] || [ ! -f "$D/ort129.tar.xz" ] || [ ! -f "$D/providers_cuda.so.xz" ]; then
    rm -rf "$T/probe-bundle"
    bash "$GP/build-bundle.sh" "$T/probe-bundle"    # ~8 min on 2 cores (xz -9e)
    cp "$T/probe-bundle/node.xz" "$T/probe-bundle/ort129.tar.xz" "$T/probe-bundle/providers_cuda.so.xz" \
       "$T/probe-bundle/expected.sha256" "$D/"
  fi
  bundle_app "$D"
  tar -C "$ROOT/node_modules" -cf - sharp @img/colour @img/sharp-linux-x64 @img/sharp-libvips-linux-x64 detect-libc \
    semver | xz -T0 -6 > "$D/sharp.tar.xz"
  du -sh "$D"; ls -la "$D"
  exit 0
fi

exec > >(tee "$O/gpu.log") 2>&1
START=$(date +%s)   # the device gives one command 600 s: Python gets ≤ 330 s, Node what is left up to 560 s
step() { echo; echo "=== $* ($(date -u +%T))"; }
PY="$(find_python)"
[ -n "$PY" ] || { echo "no Python with torch found (set GPUBENCH_PYTHON)"; exit 2; }
step env
uname -m; nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total --format=csv 2>&1 | head -3
"$PY" -c 'import torch, sys; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.cuda.is_available()); import importlib.util as u; print("onnx package:", u.find_spec("onnx") is not None)'
nproc; free -g | head -2

if [ "$MODE" = rehearse ]; then
  SIZE=mini; PROVIDER=cpu; NODE=node; APP="$T/app"; QUICK=--quick
  bundle_app "$APP"; ln -sfn "$ROOT/node_modules" "$APP/node_modules"
  CUDA_LIBS=""
else
  SIZE="${GPUBENCH_SIZE:-full}"; PROVIDER="${GPUBENCH_PROVIDER:-cuda}"; APP="$T/app"
  QUICK=$([ "$SIZE" = mini ] && echo --quick)
  step unpack
  [ -d "$D" ] || { echo "missing $D: run 'bash bench/gpu.sh prepare' first and carry training/cache/gpubench"; exit 2; }
  [ -x "$T/node" ] || { unxz_py "$D/node.xz" "$T/node" && chmod +x "$T/node"; }
  NODE="$T/node"
  mkdir -p "$APP"
  cp "$D/gpu-bench.mjs" "$APP/"
  if [ ! -d "$APP/node_modules/onnxruntime-node" ]; then
    unxz_py "$D/ort129.tar.xz" "$T/ort129"              # → $T/ort129/node_modules/{onnxruntime-node,onnxruntime-common}
    mkdir -p "$APP/node_modules"; mv "$T/ort129/node_modules/"* "$APP/node_modules/"
    unxz_py "$D/sharp.tar.xz" "$APP/node_modules"
  fi
  P="$APP/node_modules/onnxruntime-node/bin/napi-v6/linux/x64"
  [ -f "$P/libonnxruntime_providers_cuda.so" ] || unxz_py "$D/providers_cuda.so.xz" "$P/libonnxruntime_providers_cuda.so"
  "$NODE" --version; ls -la "$P"
  # CUDA 13 user-space libraries: the PyTorch cu130 wheels' nvidia-* packages, or a CUDA install.
  SITE=$("$PY" -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null)
  CUDA_LIBS=$(find "$SITE/nvidia" /usr/local/cuda*/lib64 /usr/local/cuda*/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu -maxdepth 3 \
    \( -name 'libcudart.so.13*' -o -name 'libcublas.so.13*' -o -name 'libcublasLt.so.13*' -o -name 'libcurand.so.10*' \
       -o -name 'libcufft.so.12*' -o -name 'libcudnn.so.9*' \) -printf '%h\n' 2>/dev/null | sort -u | tr '\n' ':')
  [ -d /usr/local/nvidia/lib64 ] && CUDA_LIBS="$CUDA_LIBS/usr/local/nvidia/lib64:"
  CUDA_LIBS="${CUDA_LIBS%:}"; echo "CUDA_LIBS=$CUDA_LIBS"
  LD_LIBRARY_PATH="$CUDA_LIBS" ldd "$P/libonnxruntime_providers_cuda.so" | grep -E 'cuda|cublas|curand|not found'
fi

step "build bundles + PyTorch eager ($SIZE)"
rm -rf "$T/bundles"
timeout $(( 330 - ($(date +%s) - START) )) "$PY" "$ROOT/bench/gpu_build.py" --out "$T/bundles" --size "$SIZE" \
  --fp16-deadline-s $(( 240 - ($(date +%s) - START) )) \
  $([ "$MODE" = rehearse ] && echo "--device cpu --threads 1") 2>&1 | grep -v -E 'TracerWarning|^  |UserWarning|_C\._jit'
cp "$T/bundles/torch.json" "$O/" 2>/dev/null || echo "no torch.json"
du -sh "$T/bundles"/* 2>/dev/null
nvidia-smi --query-gpu=memory.used --format=csv 2>/dev/null | tail -1

step "TS runtime on $PROVIDER"
LEFT=$(( 560 - ($(date +%s) - START) )); [ "$LEFT" -lt 60 ] && LEFT=60; echo "node time limit ${LEFT}s"
CUDA_MODULE_LOADING=LAZY LD_LIBRARY_PATH="${CUDA_LIBS}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" timeout $LEFT \
  "$NODE" "$APP/gpu-bench.mjs" --bundles "$T/bundles" --provider "$PROVIDER" --out "$O/ts.json" $QUICK &
NPID=$!
PEAK=0
while kill -0 $NPID 2>/dev/null; do
  M=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null | head -1); M=${M:-0}
  [ "$M" -gt "$PEAK" ] 2>/dev/null && PEAK=$M
  sleep 2
done
wait $NPID; echo "node exit=$?  peak GPU memory used: ${PEAK} MiB"
echo "{\"peakGpuMemoryMiB\": $PEAK}" > "$O/gpu-mem.json"

step summary
"$NODE" - "$O" <<'JSEOF'
const fs = require('fs'); const o = process.argv[2];
const rd = (f) => { try { return JSON.parse(fs.readFileSync(`${o}/${f}`, 'utf8')); } catch { return null; } };
const py = rd('torch.json') || {}; const ts = rd('ts.json') || { bundles: {} }; const mem = rd('gpu-mem.json') || {};
const f = (x, d = 1) => (typeof x === 'number' && isFinite(x) ? x.toFixed(d) : 'n/a');
const L = [];
L.push(`device: ${py.device ?? '?'}, torch ${py.torch ?? '?'}, provider ${ts.provider}, node ${ts.node}`);
const bw = py.bandwidthGBs; const wb = py.llmWeightBytesFp32;
L.push(`measured copy bandwidth ${f(bw, 0)} GB/s; LLM fp32 weights ${f(wb / 1e9, 2)} GB (${f(py.llmWeightBytesFp32NoEmbedding / 1e9, 2)} GB without the embedding table, which decode reads only as the tied head)`);
const floorMs = wb && bw ? (wb / 1e9) / bw * 1000 : NaN;
L.push(`bandwidth floor, batch 1 fp32: ${f(floorMs, 2)} ms/token = ${f(1000 / floorMs, 0)} tokens/s`);
L.push('', '| LLM decode | batch | tokens/s | ms/step | vs floor |', '|---|---|---|---|---|');
for (const r of ts.bundles.b256?.llmDecode ?? []) L.push(`| Dialect ORT fp32 | ${r.batch} | ${f(r.tokensPerS)} | ${f(r.msPerStep, 2)} | ${f(r.msPerStep / floorMs, 2)}× |`);
for (const r of ts.bundles.b256f16?.llmDecode ?? []) L.push(`| Dialect ORT fp16 | ${r.batch} | ${f(r.tokensPerS)} | ${f(r.msPerStep, 2)} | ${f(r.msPerStep / (floorMs / 2), 2)}× (fp16 floor) |`);
for (const k of ['llm_fp32', 'llm_bf16']) for (const r of py[k] ?? []) L.push(`| PyTorch eager ${k.slice(4)} | ${r.batch} | ${f(r.tokensPerS)} | ${f(r.msPerStep, 2)} | ${f(r.msPerStep / floorMs, 2)}× |`);
L.push('', `| AR-DTok (CFG 4, ${py.ar_256?.condTokens ?? '?'} condition tokens) | codes/s Dialect | codes/s PyTorch fp32 |`, '|---|---|---|');
for (const [b, px] of [['b256', 256], ['b512', 512], ['b256f16', '256 (fp16)']]) {
  const a = ts.bundles[b]?.arDTok ?? []; const best = a.length ? Math.max(...a.map((x) => x.codesPerS)) : NaN;
  L.push(`| ${px} px (${a[0]?.codes ?? '?'} codes) | ${f(best, 0)} | ${f(py[`ar_${px}`]?.codesPerS, 0)} |`);
}
L.push('', '| generate end to end (default sampling) | image tokens | total ms | LLM ms | detok ms | VQ ms |', '|---|---|---|---|---|---|');
for (const [b, px] of [['b256', 256], ['b512', 512], ['b256f16', '256 (fp16)']]) for (const g of ts.bundles[b]?.generate ?? [])
  L.push(`| ${px} px, scale ${g.scale} | ${g.imageTokens} | ${f(g.timings.total, 0)} | ${f(g.timings.prefill + g.timings.decode, 0)} | ${f(g.timings.detokenize, 0)} | ${f(g.timings.vqDecode, 0)} |`);
L.push('', `load (session creation) b256 ${f(ts.bundles.b256?.loadMs / 1000)} s, b512 ${f(ts.bundles.b512?.loadMs / 1000)} s, b256f16 ${f(ts.bundles.b256f16?.loadMs / 1000)} s; peak GPU memory ${mem.peakGpuMemoryMiB ?? '?'} MiB`);
for (const [b, r] of Object.entries(ts.bundles)) if (r.error) L.push(`ERROR in ${b}: ${r.error.split('\n')[0]}`);
fs.writeFileSync(`${o}/summary.md`, L.join('\n') + '\n'); console.log(L.join('\n'));
JSEOF
sleep 1
