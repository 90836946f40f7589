/**
 * `npm run bench:model`: the model runtime measured in one run on one bundle and one input.
 *
 *   npm run bench:model -- [--model DIR] [--runs 20] [--threads 1] [--no-pytorch] [--out bench/results/model.json]
 *
 * 1. Latency at concurrency 1, greedy everywhere (so that PyTorch does the same work and must produce the same
 *    tokens): per stage (encode, prefill, per-token decode, de-tokenize, VQ decode) and end to end p50/p95 of
 *    understand, generate and edit.
 * 2. Throughput of generate with the bundle's default sampling at concurrency 1, 4 and 16 (requests per second over
 *    a fixed number of requests each), which is what continuous batching buys.
 * 3. Time outside onnxruntime as a fraction of the decoders' busy time during the concurrency-1 generate runs:
 *    sampling, tensor building and cache bookkeeping, everything a decode step does besides `session.run`.
 * 4. The same greedy pipeline in PyTorch eager on the same weights (`training/bench_torch.py`, which rebuilds the
 *    modules from the bundle), with the same thread count.
 *
 * Writes the figures to bench/results/model.json and prints a table.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { DEFAULT_BUNDLE_DIR } from '../src/cli/model-options.ts';
import { type SelfCheckReport, TarModel, type Timings } from '../src/model/index.ts';
import { JUDGE_MODULE } from '../src/shapes/judge.ts';

const root = fileURLToPath(new URL('../', import.meta.url));

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: DEFAULT_BUNDLE_DIR },
    runs: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '3' },
    threads: { type: 'string', default: '1' }, // the runtime's default for a small bundle (tar-model.ts)
    image: { type: 'string', default: join(root, 'bench/input.png') },
    out: { type: 'string', default: join(root, 'bench/results/model.json') },
    'no-pytorch': { type: 'boolean', default: false },
  },
});
const runs = Number(values.runs);
const warmup = Number(values.warmup);
const threads = Number(values.threads);
const bundleDir = resolve(values.model);

const PROMPTS = {
  understand: 'Describe the image.',
  generate: 'a small blue square at the top left and a large red circle in the center on a white background',
  edit: 'make the circle green',
};
const GREEDY = { temperature: 0 };

function quantile(samples: readonly number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index] as number;
}
const median = (samples: readonly number[]) => quantile(samples, 0.5);
const round = (value: number, digits = 3) => Number(value.toFixed(digits));

type Task = keyof typeof PROMPTS;
interface TaskRun {
  ms: number;
  timings: Timings;
  tokens: number[];
  answerIds?: number[];
  codes?: number[];
}

async function main(): Promise<void> {
  // As the CLI and the server load it: with the shapes judge, so a bundle's self-check runs as it does in the product.
  const model = await TarModel.load({ bundleDir, intraOpThreads: threads, maxBatch: 16, maxQueue: 256, judgeModule: JUDGE_MODULE });
  const info = model.info();
  // The input image, at the bundle's input size so that PyTorch and the runtime see identical pixels.
  const scratch = mkdtempSync(join(tmpdir(), 'dialect-bench-'));
  const inputPath = join(scratch, 'input.png');
  const size = model.manifest.image.inputSize;
  const inputPng = await sharp(values.image).removeAlpha().resize(size, size, { kernel: 'nearest' }).png().toBuffer();
  writeFileSync(inputPath, inputPng);
  const image = { bytes: new Uint8Array(inputPng) };

  const runTask = async (task: Task): Promise<TaskRun> => {
    const started = performance.now();
    if (task === 'understand') {
      const r = await model.understand({ image, prompt: PROMPTS.understand, sampling: GREEDY, seed: 1 });
      return { ms: performance.now() - started, timings: r.timings, tokens: r.imageTokens.tokens, answerIds: r.answerIds };
    }
    const common = { prompt: PROMPTS[task], sampling: GREEDY, detokSampling: GREEDY, seed: 1 };
    const r = task === 'generate' ? await model.generate(common) : await model.edit({ ...common, image });
    return { ms: performance.now() - started, timings: r.timings, tokens: r.image.tokens, codes: r.image.vqCodes };
  };

  // 1. Latency at concurrency 1.
  const latency: Record<string, unknown> = {};
  const lastRuns: Partial<Record<Task, TaskRun>> = {};
  let ortBefore = { ort: 0, busy: 0 };
  let ortAfter = { ort: 0, busy: 0 };
  const decoderTime = () => {
    const m = model.metrics();
    return { ort: m.llm.ortMs + m.arDTok.ortMs, busy: m.llm.busyMs + m.arDTok.busyMs };
  };
  for (const task of Object.keys(PROMPTS) as Task[]) {
    for (let i = 0; i < warmup; i += 1) await runTask(task);
    if (task === 'generate') ortBefore = decoderTime();
    const samples: TaskRun[] = [];
    for (let i = 0; i < runs; i += 1) samples.push(await runTask(task));
    if (task === 'generate') ortAfter = decoderTime();
    lastRuns[task] = samples.at(-1) as TaskRun;
    const stage = (pick: (t: Timings) => number) => round(median(samples.map((s) => pick(s.timings))));
    latency[task] = {
      p50_ms: round(median(samples.map((s) => s.ms))),
      p95_ms: round(quantile(samples.map((s) => s.ms), 0.95)),
      stages_ms: {
        encode: stage((t) => t.encode),
        prefill: stage((t) => t.prefill),
        decode_per_token: stage((t) => t.decode / Math.max(1, t.decodeTokens - 1)),
        decode_tokens: stage((t) => t.decodeTokens),
        detokenize: stage((t) => t.detokenize),
        vq_decode: stage((t) => t.vqDecode),
      },
    };
  }
  const busy = ortAfter.busy - ortBefore.busy;
  const outsideOrtFraction = busy > 0 ? (busy - (ortAfter.ort - ortBefore.ort)) / busy : Number.NaN;

  // 2. Throughput of generate with default sampling at concurrency 1, 4 and 16.
  const throughput: Record<string, number> = {};
  for (const concurrency of [1, 4, 16]) {
    const total = 32;
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < total) {
          const seed = next++;
          await model.generate({ prompt: PROMPTS.generate, seed });
        }
      }),
    );
    throughput[`c${concurrency}`] = round(total / ((performance.now() - started) / 1000));
  }

  // 3. Generate with the self-check a request may ask for (off by default): the benchmark's two-object prompt, which
  // this model's first image misses (the check then writes the bundle's candidates), and a one-object prompt.
  const selfCheck: Record<string, unknown> = {};
  if (model.manifest.selfCheck !== undefined) {
    for (const [name, prompt] of [['two_objects', PROMPTS.generate], ['one_object', 'a red circle']] as const) {
      const timed = async (check: boolean) => {
        const samples: { ms: number; report: SelfCheckReport | undefined }[] = [];
        for (let i = 0; i < warmup + runs; i += 1) {
          const started = performance.now();
          const r = await model.generate({ prompt, sampling: GREEDY, detokSampling: GREEDY, seed: 1, selfCheck: check });
          if (i >= warmup) samples.push({ ms: performance.now() - started, report: r.selfCheck });
        }
        return samples;
      };
      const unchecked = await timed(false);
      const checked = await timed(true);
      selfCheck[name] = {
        prompt,
        unchecked_p50_ms: round(median(unchecked.map((s) => s.ms))),
        p50_ms: round(median(checked.map((s) => s.ms))),
        p95_ms: round(quantile(checked.map((s) => s.ms), 0.95)),
        check: checked[0]?.report,
      };
    }
  }
  await model.dispose();

  // 4. PyTorch eager on the same weights.
  let pytorch: Record<string, unknown> | null = null;
  let speedup: Record<string, number> | null = null;
  let tokensMatch: Record<string, boolean> | null = null;
  if (!values['no-pytorch']) {
    const child = spawnSync(
      join(root, 'training/py'),
      [join(root, 'training/bench_torch.py'), '--bundle', bundleDir, '--image', inputPath, '--runs', String(runs),
        '--warmup', String(warmup), '--threads', String(threads),
        '--understand-prompt', PROMPTS.understand, '--generate-prompt', PROMPTS.generate, '--edit-prompt', PROMPTS.edit],
      { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    if (child.status !== 0) throw new Error(`training/bench_torch.py failed (exit ${child.status}); pass --no-pytorch to skip it`);
    const report = JSON.parse(child.stdout) as {
      tasks: Record<Task, { latenciesMs: number[]; last: { imageTokens: number[]; answerIds?: number[]; codes?: number[] } }>;
    };
    pytorch = {};
    speedup = {};
    tokensMatch = {};
    for (const task of Object.keys(PROMPTS) as Task[]) {
      const torchTask = report.tasks[task];
      const p50 = median(torchTask.latenciesMs);
      pytorch[task] = { p50_ms: round(p50), p95_ms: round(quantile(torchTask.latenciesMs, 0.95)) };
      speedup[task] = round(p50 / (latency[task] as { p50_ms: number }).p50_ms, 2);
      const ours = lastRuns[task] as TaskRun;
      const same = (a: readonly number[] | undefined, b: readonly number[] | undefined) =>
        JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
      tokensMatch[task] =
        task === 'understand'
          ? same(ours.tokens, torchTask.last.imageTokens) && same(ours.answerIds, torchTask.last.answerIds)
          : same(ours.tokens, torchTask.last.imageTokens) && same(ours.codes, torchTask.last.codes);
    }
  }
  rmSync(scratch, { recursive: true, force: true });

  const result = {
    measured_at: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: availableParallelism(), node: process.version },
    model: { name: info.name, version: info.version, bundle: bundleDir },
    settings: { runs, warmup, intra_op_threads: threads, latency_sampling: 'greedy', throughput_sampling: 'bundle defaults' },
    latency,
    throughput_requests_per_s: throughput,
    self_check: selfCheck,
    pytorch_eager: pytorch,
    tokens_match_pytorch: tokensMatch,
    // Headline figures: the slowest task's speed-up, the batching gain, and the decode overhead.
    speedup_vs_pytorch: speedup === null ? null : Math.min(...Object.values(speedup)),
    speedup_vs_pytorch_per_task: speedup,
    batch16_throughput_gain: round((throughput.c16 ?? 0) / (throughput.c1 ?? 1), 2),
    outside_ort_fraction: round(outsideOrtFraction, 4),
  };
  mkdirSync(dirname(values.out), { recursive: true });
  writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`);
  printTable(result);
  console.log(`\nwrote ${values.out}`);
}

function printTable(r: {
  latency: Record<string, unknown>;
  throughput_requests_per_s: Record<string, number>;
  self_check: Record<string, unknown>;
  pytorch_eager: Record<string, unknown> | null;
  speedup_vs_pytorch: number | null;
  tokens_match_pytorch: Record<string, boolean> | null;
  batch16_throughput_gain: number;
  outside_ort_fraction: number;
}): void {
  const rows: string[][] = [['task', 'p50 ms', 'p95 ms', 'encode', 'prefill', 'ms/token', 'detok', 'vq', 'pytorch p50', 'same tokens']];
  for (const [task, value] of Object.entries(r.latency)) {
    const v = value as { p50_ms: number; p95_ms: number; stages_ms: Record<string, number> };
    const torch = r.pytorch_eager?.[task] as { p50_ms: number } | undefined;
    rows.push([task, v.p50_ms, v.p95_ms, v.stages_ms.encode, v.stages_ms.prefill, v.stages_ms.decode_per_token,
      v.stages_ms.detokenize, v.stages_ms.vq_decode, torch?.p50_ms ?? '-', r.tokens_match_pytorch?.[task] ?? '-'].map(String));
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const row of rows) console.log(row.map((cell, i) => cell.padStart(widths[i]!)).join('  '));
  const t = r.throughput_requests_per_s;
  console.log(`\ngenerate throughput (req/s): c1 ${t.c1}  c4 ${t.c4}  c16 ${t.c16}`);
  for (const [name, value] of Object.entries(r.self_check)) {
    const v = value as { unchecked_p50_ms: number; p50_ms: number; p95_ms: number; check?: SelfCheckReport };
    const check = v.check === undefined ? 'not checked' : `${v.check.written} written, ${v.check.passed ? `#${v.check.chosen} passed` : 'none passed'}`;
    console.log(
      `generate with self-check, ${name.replace('_', ' ')}: p50 ${v.p50_ms} ms, p95 ${v.p95_ms} ms (${check}); unchecked p50 ${v.unchecked_p50_ms} ms`,
    );
  }
  console.log(`speedup_vs_pytorch ${r.speedup_vs_pytorch ?? '-'} (target >= 2)`);
  console.log(`batch16_throughput_gain ${r.batch16_throughput_gain} (target >= 4)`);
  console.log(`outside_ort_fraction ${r.outside_ort_fraction} (target < 0.15)`);
}

await main();
