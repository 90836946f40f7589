/**
 * `npm run bench:api`: the API's cost over the model runtime, and the server under load, in one run on one model.
 *
 *   npm run bench:api -- [--model DIR] [--runs 20] [--concurrency 8] [--clients 64] [--duration 60] [--threads 2]
 *                        [--model-thread]
 *                        [--out bench/results/api.json]
 *
 * 1. Latency (p50, p99) of understand, generate and edit at concurrency 1: a direct `TarModel` call and the same
 *    request through the API (HTTP POST, wait for the job, on PGlite), alternated call by call so that both see the
 *    same machine load. The API's overhead is (p50 API − p50 direct) / p50 direct.
 * 2. Throughput of each mutation at `--concurrency` requests in flight, direct and through the API.
 * 3. Load: `--clients` concurrent clients (each its own user) for `--duration` seconds, each sending a random
 *    mutation, waiting for it, and backing off 250 ms after a refusal. The server runs with its default limits.
 *    Every answer must be a success or a typed refusal (QUEUE_FULL, RATE_LIMITED); anything else fails the run.
 *
 * The direct calls use a TarModel in this thread. The server is given the same model, or with `--model-thread` a
 * ThreadedTarModel of the same bundle (as DIALECT_MODEL_THREAD=1 runs it), whose thread hop then counts as API cost.
 *
 * The database is a fresh PGlite in a temporary folder (or DATABASE_URL). Writes bench/results/api.json.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_BUNDLE_DIR } from '../src/cli/model-options.ts';
import { openDatabase } from '../src/db/client.ts';
import { type Model, TarModel, ThreadedTarModel } from '../src/model/index.ts';
import { startServer } from '../src/server/app.ts';
import { loadConfig } from '../src/server/config.ts';
import { createLogger } from '../src/server/logging.ts';

const root = fileURLToPath(new URL('../', import.meta.url));
const { values } = parseArgs({
  options: {
    model: { type: 'string', default: DEFAULT_BUNDLE_DIR },
    runs: { type: 'string', default: '20' },
    concurrency: { type: 'string', default: '8' },
    clients: { type: 'string', default: '64' },
    duration: { type: 'string', default: '60' },
    threads: { type: 'string', default: '1' },
    'model-thread': { type: 'boolean', default: false }, // the runtime's default for a small bundle (tar-model.ts)
    image: { type: 'string', default: join(root, 'bench/input.png') },
    out: { type: 'string', default: join(root, 'bench/results/api.json') },
  },
});
const runs = Number(values.runs);
const concurrency = Number(values.concurrency);
const clients = Number(values.clients);
const durationS = Number(values.duration);
const threads = Number(values.threads);

const PROMPTS = {
  understand: 'Describe the image.',
  generate: 'a small blue square at the top left and a large red circle in the center on a white background',
  edit: 'make the circle green',
};
type Task = keyof typeof PROMPTS;
const TASKS: Task[] = ['understand', 'generate', 'edit'];

function quantile(samples: readonly number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

const dataDir = mkdtempSync(join(tmpdir(), 'dialect-bench-api-'));
// As the server opens it: PGlite on the main thread unless DIALECT_PGLITE_WORKER=1.
const pgliteWorker = process.env.DIALECT_PGLITE_WORKER === '1' || process.env.DIALECT_PGLITE_WORKER === 'true';
const database = await openDatabase({ ...(process.env.DATABASE_URL ? { url: process.env.DATABASE_URL } : {}), dataDir, pgliteWorker });
const model = await TarModel.load({ bundleDir: resolve(values.model), intraOpThreads: threads, maxBatch: 16 });
const served: Model = values['model-thread']
  ? await ThreadedTarModel.load({ bundleDir: resolve(values.model), intraOpThreads: threads, maxBatch: 16 })
  : model;
const info = model.info();
const logger = createLogger('warn');
process.stderr.write(`bench:api on ${info.name} ${info.version} (${resolve(values.model)}), ${database.driver}${database.driver === 'pglite' ? (pgliteWorker ? ' in a worker thread' : ' on the main thread') : ''}, the server's model ${served === model ? 'in its thread' : 'in a worker thread'}\n`);

const imageBytes = readFileSync(values.image);
const imageTokens = await model.encodeImage(imageBytes);

async function phaseOne() {
  const server = await startServer(
    loadConfig({ PORT: '0', LOG_LEVEL: 'warn', DIALECT_RATE_PER_MINUTE: '1000000', DIALECT_RATE_BURST: '100000', DIALECT_MAX_JOBS_PER_USER: '10000', DIALECT_MAX_QUEUE: '10000' }),
    { database, model: served, logger },
  );
  const post = async (query: string, variables: object) => {
    const response = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await response.json()) as { data?: any; errors?: unknown[] };
    if (response.status !== 200 || body.errors !== undefined) throw new Error(`API failure: ${JSON.stringify(body)}`);
    return body.data;
  };
  // An uploaded image to refer to by id, as a client does after its first request.
  const upload = await post(
    'mutation($i: UnderstandInput!) { understand(input: $i) { turn { inputImage { id } } errors { code } } }',
    { i: { prompt: 'warm-up', image: { base64: imageBytes.toString('base64') } } },
  );
  const imageId: string = upload.understand.turn.inputImage.id;
  const api = async (task: Task, seed: number) => {
    const input = { prompt: PROMPTS[task], seed, ...(task === 'generate' ? {} : { image: { id: imageId } }) };
    const data = await post(`mutation($i: ${task[0]!.toUpperCase()}${task.slice(1)}Input!) { ${task}(input: $i) { turn { id status } errors { code message } } }`, { i: input });
    const payload = data[task];
    if (payload.errors.length > 0 || payload.turn.status !== 'SUCCEEDED') throw new Error(`API ${task} failed: ${JSON.stringify(payload)}`);
  };
  const direct = async (task: Task, seed: number) => {
    if (task === 'understand') await model.understand({ prompt: PROMPTS.understand, image: imageTokens, seed });
    else if (task === 'generate') await model.generate({ prompt: PROMPTS.generate, seed });
    else await model.edit({ prompt: PROMPTS.edit, image: imageTokens, seed });
  };
  const timed = async (body: () => Promise<void>) => {
    const start = performance.now();
    await body();
    return performance.now() - start;
  };

  const latency: Record<string, unknown> = {};
  const throughput: Record<string, unknown> = {};
  for (const task of TASKS) {
    for (let i = 0; i < 2; i += 1) {
      await direct(task, i);
      await api(task, i);
    }
    const d: number[] = [];
    const a: number[] = [];
    for (let i = 0; i < runs; i += 1) {
      // Alternate the order so neither side always runs second.
      if (i % 2 === 0) {
        d.push(await timed(() => direct(task, 1000 + i)));
        a.push(await timed(() => api(task, 1000 + i)));
      } else {
        a.push(await timed(() => api(task, 1000 + i)));
        d.push(await timed(() => direct(task, 1000 + i)));
      }
    }
    const p50d = quantile(d, 0.5);
    const p50a = quantile(a, 0.5);
    latency[task] = {
      direct: { p50: round(p50d), p99: round(quantile(d, 0.99)) },
      api: { p50: round(p50a), p99: round(quantile(a, 0.99)) },
      overheadMsP50: round(p50a - p50d),
      overheadP50: round((p50a - p50d) / p50d, 4),
    };
    process.stderr.write(`${task}: direct p50 ${round(p50d)} ms, API p50 ${round(p50a)} ms (${round((100 * (p50a - p50d)) / p50d, 2)} %)\n`);

    const burst = async (call: (task: Task, seed: number) => Promise<void>) => {
      const total = Math.max(concurrency * 2, runs);
      let next = 0;
      const start = performance.now();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < total) {
            next += 1;
            await call(task, 5000 + next);
          }
        }),
      );
      return total / ((performance.now() - start) / 1000);
    };
    const rd = await burst(direct);
    const ra = await burst(api);
    throughput[task] = { concurrency, direct: round(rd, 2), api: round(ra, 2), ratio: round(ra / rd, 3) };
    process.stderr.write(`${task}: ${concurrency} in flight: direct ${round(rd, 2)} req/s, API ${round(ra, 2)} req/s\n`);
  }
  await server.stop();
  return { latency, throughput };
}

async function phaseTwo() {
  const server = await startServer(loadConfig({ PORT: '0', LOG_LEVEL: 'warn' }), { database, model: served, logger });
  const deadline = Date.now() + durationS * 1000;
  const outcomes: Record<string, number> = {};
  const failures: string[] = [];
  const latencies: number[] = [];
  let maxQueue = 0;
  const poll = setInterval(() => {
    maxQueue = Math.max(maxQueue, server.services.runner.queueDepth);
  }, 100);
  const upload = imageBytes.toString('base64');
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      const headers = { 'content-type': 'application/json', 'x-dialect-discord-user': String(7_000_000 + client) };
      let imageId: string | null = null;
      let n = 0;
      while (Date.now() < deadline) {
        n += 1;
        const task = TASKS[(client + n) % 3] as Task;
        const image = task === 'generate' ? {} : { image: imageId === null ? { base64: upload } : { id: imageId } };
        const start = performance.now();
        try {
          const response = await fetch(`${server.url}/graphql`, {
            method: 'POST',
            headers,
            body: JSON.stringify({
              query: `mutation($i: ${task[0]!.toUpperCase()}${task.slice(1)}Input!) { ${task}(input: $i) { turn { status inputImage { id } } errors { code } } }`,
              variables: { i: { prompt: PROMPTS[task], ...image } },
            }),
          });
          const body = (await response.json()) as { data?: any; errors?: { extensions?: { code?: string } }[] };
          if (response.status !== 200 || body.errors !== undefined) {
            failures.push(`HTTP ${response.status} ${JSON.stringify(body.errors ?? body).slice(0, 200)}`);
            continue;
          }
          const payload = body.data[task];
          const code: string = payload.errors[0]?.code ?? payload.turn.status;
          outcomes[code] = (outcomes[code] ?? 0) + 1;
          if (code === 'SUCCEEDED') {
            latencies.push(performance.now() - start);
            imageId ??= payload.turn.inputImage?.id ?? null;
          } else if (code === 'QUEUE_FULL' || code === 'RATE_LIMITED') {
            await new Promise((r) => setTimeout(r, 250));
          } else failures.push(`typed but unexpected: ${code}`);
        } catch (error) {
          failures.push(`network: ${(error as Error).message}`);
        }
      }
    }),
  );
  clearInterval(poll);
  const metrics = await server.metrics.text();
  await server.stop();
  const succeeded = outcomes.SUCCEEDED ?? 0;
  return {
    clients,
    durationS,
    outcomes,
    failures: failures.length,
    failureSamples: failures.slice(0, 5),
    throughput: round(succeeded / durationS, 2),
    latency: { p50: round(quantile(latencies, 0.5)), p99: round(quantile(latencies, 0.99)) },
    maxQueueDepth: maxQueue,
    refusalsCounted: metrics.split('\n').filter((line) => line.startsWith('dialect_jobs_refused_total')),
  };
}

let exitCode = 0;
try {
  const one = await phaseOne();
  process.stderr.write(`load: ${clients} clients for ${durationS} s...\n`);
  const load = await phaseTwo();
  process.stderr.write(`load: ${JSON.stringify(load)}\n`);
  const result = {
    date: new Date().toISOString(),
    model: `${info.name} ${info.version}`,
    bundle: resolve(values.model),
    database: database.driver,
    pgliteWorker: database.driver === 'pglite' && pgliteWorker,
    machine: { cpus: cpus()[0]?.model ?? 'unknown', cores: availableParallelism(), threads },
    modelThread: served !== model,
    runs,
    ...one,
    load,
  };
  mkdirSync(dirname(values.out), { recursive: true });
  writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  const over = Object.entries(one.latency).filter(([, v]) => (v as { overheadP50: number }).overheadP50 > 0.05);
  if (over.length > 0) {
    process.stderr.write(`API overhead above 5 % at p50: ${over.map(([k]) => k).join(', ')}\n`);
    exitCode = 1;
  }
  if (load.failures > 0) {
    process.stderr.write(`load run: ${load.failures} failures other than typed refusals\n`);
    exitCode = 1;
  }
} finally {
  await model.dispose();
  if (served !== model) await served.dispose();
  await database.close();
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(exitCode);
