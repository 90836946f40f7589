/**
 * TypeScript side of bench/gpu.sh: the Dialect runtime on the random-weight full-size Tar-1.5B bundles that
 * bench/gpu_build.py wrote, on the execution provider of the configuration (`--provider`, default cuda).
 *
 *   node gpu-bench.mjs --bundles DIR [--provider cuda|webgpu|cpu] [--out ts.json] [--quick]
 *   (or: npx tsx bench/gpu.ts … in a checkout)
 *
 * Measures, per bundle (DIR/b256, DIR/b512, and DIR/b256f16 = float16 LLM, AR-DTok and VQ when built): load time; LLM decode tokens/s at batch 1 and 16 (greedy, text
 * answers of a fixed length, 16 concurrent requests batched by the runtime); AR-DTok codes/s with CFG (renderImage
 * of 729 stored tokens, greedy); end-to-end generate latency with the bundle's default sampling at each scale.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { TarModel, type Timings } from '../src/model/index.ts';

const { values } = parseArgs({
  options: {
    bundles: { type: 'string' },
    provider: { type: 'string', default: 'cuda' },
    out: { type: 'string', default: 'ts.json' },
    quick: { type: 'boolean', default: false },
  },
});
if (values.bundles === undefined) throw new Error('--bundles DIR is required');
const provider = values.provider as 'cpu' | 'cuda' | 'webgpu';
const quick = values.quick;
const STEPS = quick ? 16 : 128;
const log = (...a: unknown[]) => console.log(`[${new Date().toISOString().slice(11, 19)}]`, ...a);
const results: Record<string, unknown> = { provider, node: process.version, bundles: {} };

function pick(t: Timings) {
  return { total: t.total, prefill: t.prefill, decode: t.decode, decodeTokens: t.decodeTokens,
    detokenize: t.detokenize, vqDecode: t.vqDecode, ort: t.ort, outsideOrt: t.outsideOrt };
}

// A prompt whose greedy answer on random weights is long: eos is 2 ids out of ~217k, so answers run to maxNewTokens
// almost surely; runs that stop early are reported with their real token counts.
const PROMPT = 'Describe a busy harbour at dawn, with boats, gulls, cranes and the light on the water, in detail.';

async function decodeRate(model: TarModel, batch: number) {
  const sampling = { temperature: 0, maxNewTokens: STEPS };
  await Promise.all(Array.from({ length: batch }, () => model.understand({ prompt: PROMPT, sampling: { ...sampling, maxNewTokens: 4 } })));
  const start = performance.now();
  const runs = await Promise.all(Array.from({ length: batch }, () => model.understand({ prompt: PROMPT, sampling })));
  const wall = performance.now() - start;
  const tokens = runs.reduce((a, r) => a + r.timings.decodeTokens - 1, 0);   // the first token comes from prefill
  const decodeMs = Math.max(...runs.map((r) => r.timings.decode));
  return { batch, tokens, decodeMs, tokensPerS: tokens / (decodeMs / 1000), msPerStep: decodeMs / (STEPS - 1),
    prefillMs: runs.map((r) => r.timings.prefill), wallMs: wall };
}

async function detokRate(model: TarModel) {
  const s1 = model.info().scales.find((s) => s.scale === 1);
  if (s1 === undefined) throw new Error('no scale 1');
  const tokens = Array.from({ length: s1.tokens }, (_, i) => (i * 7919) % 65536 % (model.manifest.tokens.imageCount));
  const detokSampling = { temperature: 0, cfgScale: 4 };
  await model.renderImage({ tokens, scale: 1, detokSampling });
  const out = [];
  for (let i = 0; i < (quick ? 1 : 3); i++) {
    const r = await model.renderImage({ tokens, scale: 1, detokSampling });
    const codes = r.vqCodes.length;
    out.push({ codes, condTokens: tokens.length, detokenizeMs: r.timings.detokenize, vqDecodeMs: r.timings.vqDecode,
      codesPerS: codes / (r.timings.detokenize / 1000) });
  }
  return out;
}

async function generateLatency(model: TarModel, scales: number[]) {
  const out = [];
  for (const scale of scales) {
    await model.generate({ prompt: 'a red fox in the snow', scale, seed: 1 });
    const r = await model.generate({ prompt: 'a lighthouse on a cliff at sunset', scale, seed: 2 });
    out.push({ scale, imageTokens: r.image.tokens.length, size: r.image.width, timings: pick(r.timings) });
    log(`  generate scale ${scale}: ${r.timings.total.toFixed(0)} ms (LLM ${(r.timings.prefill + r.timings.decode).toFixed(0)}, detok ${r.timings.detokenize.toFixed(0)}, vq ${r.timings.vqDecode.toFixed(0)})`);
  }
  return out;
}

for (const [name, scales, llm] of [['b256', [1, 2, 3], true], ['b512', [1], false], ['b256f16', [1, 3], true]] as const) {
  const dir = resolve(join(values.bundles, name));
  if (!existsSync(join(dir, 'manifest.json'))) {
    log(`${name}: not built, skipped`);
    continue;
  }
  const t0 = performance.now();
  const model = await TarModel.load({ bundleDir: dir, provider, maxBatch: 16 });
  const loadMs = performance.now() - t0;
  log(`${name}: loaded on ${provider} in ${(loadMs / 1000).toFixed(1)} s`);
  const r: Record<string, unknown> = { loadMs };
  try {
    if (llm) {
      r.llmDecode = [];
      for (const b of [1, 16]) {
        const d = await decodeRate(model, b);
        (r.llmDecode as unknown[]).push(d);
        log(`  LLM decode batch ${b}: ${d.tokensPerS.toFixed(1)} tokens/s (${d.msPerStep.toFixed(2)} ms/step)`);
      }
    }
    r.arDTok = await detokRate(model);
    log(`  AR-DTok: ${(r.arDTok as { codesPerS: number }[]).map((x) => x.codesPerS.toFixed(0)).join(', ')} codes/s`);
    r.generate = await generateLatency(model, [...scales]);
    r.metrics = model.metrics();
  } catch (error) {
    r.error = String((error as Error).stack ?? error);
    log(`  FAILED: ${r.error}`);
  } finally {
    await model.dispose();
  }
  (results.bundles as Record<string, unknown>)[name] = r;
  writeFileSync(values.out, JSON.stringify(results, null, 2));
}
log('wrote', values.out);
