/**
 * Worker threads whose entry is a TypeScript module, started the same way however the process itself was started
 * (`tsx src/server/main.ts`, `node --import tsx`, the `dialect` bin, a future Node that loads .ts by itself).
 *
 * A worker does not inherit the main thread's module hooks: tsx registers them at run time in `bin/dialect.js`,
 * and its `--import` loader, although a worker inherits the flag, does not register itself in worker threads. So
 * the worker starts from a small CommonJS script that imports the entry and, if Node cannot load .ts by itself,
 * registers tsx first.
 */
import { Worker, workerData, type WorkerOptions } from 'node:worker_threads';

const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
import(workerData.entry).catch(async (error) => {
  if (error == null || error.code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw error;
  const { register } = await import(workerData.tsx);
  register();
  await import(workerData.entry + '?tsx');
});
`;

interface Envelope<T> {
  entry: string;
  tsx: string;
  input: T;
}

/** Starts `entry` (a module URL) in a worker thread; the worker reads `input` with {@link workerInput}. */
export function startTsWorker<T>(entry: URL, input: T, options: Omit<WorkerOptions, 'eval' | 'workerData'> = {}): Worker {
  const envelope: Envelope<T> = { entry: entry.href, tsx: import.meta.resolve('tsx/esm/api'), input };
  return new Worker(BOOTSTRAP, { ...options, eval: true, workerData: envelope });
}

/** Inside a worker started by {@link startTsWorker}: the input it was given. */
export function workerInput<T>(): T {
  return (workerData as Envelope<T>).input;
}
