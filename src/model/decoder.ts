import { performance } from 'node:perf_hooks';
import { CancelledError, InferenceError, InvalidRequestError, ModelDisposedError, QueueFullError } from './errors.ts';
import {
  allocFloat,
  type FloatData,
  type FloatDtype,
  floatData,
  floatTensor,
  type Graph,
  int64Tensor,
  rawFloatTensor,
  readFloat32,
  type Tensor,
} from './onnx-backend.ts';

/**
 * Continuous batching for the decoders with a KV cache (the LLM and the AR-DTok share the I/O convention of
 * docs/bundle-format.md, so one runner serves both).
 *
 * A {@link DecoderBatcher} keeps ONE batched KV cache for the rows of every active job. Rows are left-padded: each
 * row's real positions are always a contiguous suffix of the cache, `attention_mask` zeroes the padding, and
 * `position_ids` are per row, so a row's logits do not depend on who shares its batch, mathematically. Newcomers
 * are prefilled together (left-padded among themselves) and merged into the batched cache at a step boundary;
 * finished and cancelled rows are dropped at a step boundary, and the merge also trims cache columns that have
 * become padding for every remaining row. Between membership changes the `present.*` outputs are fed back as
 * `past_key_values.*` as they are, without copies.
 *
 * What batching changes numerically: the same row computed in a batch of 1 and in a batch of 8 goes through
 * differently shaped GEMMs and attention over a differently padded cache, so onnxruntime accumulates in a different
 * order and the logits can differ in the last bits (around 1e-6 relative in float32, more in float16). Greedy
 * decoding can then flip between near-tied tokens and a sampled draw can cross a bucket boundary, so a request can
 * produce different tokens at concurrency > 1 than alone. Only concurrency 1 is promised to be reproducible.
 *
 * Prefill is not chunked: admitting a newcomer delays the active rows by one prefill run.
 */

/** The prefill input of one row. A row has either token ids (LLM) or a condition with no ids (AR-DTok prefill). */
export interface RowPrefill {
  inputIds: readonly number[];
  /** Position ids of `inputIds` (the LLM's `shared-edits` scheme); default: their indices. */
  positions?: readonly number[];
  /** AR-DTok condition, float32 `[condLength, condDim]` row-major. */
  cond?: Float32Array;
}

export interface StepInfo {
  kind: 'prefill' | 'decode';
  /** Wall time of the onnxruntime run this step was part of. */
  ortMs: number;
  /** How many jobs shared the run. */
  jobs: number;
}

/**
 * A sequence (or a group of rows that decode in lockstep, like the conditional and unconditional rows of
 * classifier-free guidance) driven by a batcher.
 */
export interface DecodeJob {
  readonly rows: readonly RowPrefill[];
  /**
   * Receives the last-position logits of each of the job's rows (views that the job may overwrite; valid only
   * during the call) and returns the token to feed to every row next, or `null` when the job is finished.
   */
  step(logits: Float32Array[], info: StepInfo): number | null;
  /**
   * Position id of the token fed next to the job's row `row` (an index into `rows`), whose cache holds `length`
   * positions; default `length`.
   */
  nextPosition?(row: number, length: number): number;
  readonly signal?: AbortSignal | undefined;
  /**
   * Part of a request already under way (a self-check's candidates and readings, self-check.ts): never refused for a
   * full queue and not counted in it, which bounds the requests waiting, not the parts of one that was let in.
   */
  readonly followUp?: boolean;
  /** Called when the job leaves the queue and its prefill starts. */
  onAdmit?(): void;
}

export interface DecoderShape {
  layers: number;
  kvHeads: number;
  headDim: number;
  dtype: FloatDtype;
  /** Width of a condition row (AR-DTok); undefined for a graph without a `cond` input. */
  condDim?: number;
  /** Id used in padded `input_ids` slots (masked, so any valid id works). */
  padId: number;
}

export interface BatcherOptions {
  /** Most rows decoded together. Defaults to 16. */
  maxBatch?: number;
  /**
   * Most jobs waiting for a place in the batch (beyond those that fit the free rows); more are refused with
   * QueueFullError. Defaults to 64.
   */
  maxQueue?: number;
}

/** Counters for tests, metrics and benchmarks. */
export interface BatcherStats {
  /** Prefill runs (each may admit several jobs). */
  prefills: number;
  /** Decode runs. */
  steps: number;
  /** Decode runs shared by two jobs or more. */
  batchedSteps: number;
  /** Sum over decode runs of the rows in the batch. */
  rowSteps: number;
  /** The most rows ever decoded together. */
  maxRows: number;
  /** Time inside onnxruntime, prefill and decode. */
  ortMs: number;
  /** Time the batch loop was busy (onnxruntime plus everything else: sampling, cache merges, tensor building). */
  busyMs: number;
}

interface Slot {
  job: DecodeJob;
  resolve: () => void;
  reject: (error: unknown) => void;
  /** Real cache length of each of the job's rows. */
  lengths: number[];
  /** The token to feed next (all rows of a job take the same token). */
  pending: number;
  finished: boolean;
  onAbort?: () => void;
}

interface Cache {
  keys: FloatData[];
  values: FloatData[];
  /** Rows and columns of the cache. */
  rows: number;
  length: number;
}

export class DecoderBatcher {
  readonly maxBatch: number;
  readonly maxQueue: number;
  readonly stats: BatcherStats = { prefills: 0, steps: 0, batchedSteps: 0, rowSteps: 0, maxRows: 0, ortMs: 0, busyMs: 0 };
  readonly #waiting: Slot[] = [];
  #active: Slot[] = [];
  #cache: Cache | undefined;
  #running = false;
  /** The batch loop while it runs. */
  #loop: Promise<void> = Promise.resolve();
  /** Jobs taken from the queue whose prefill is running. */
  #admitting: Slot[] = [];
  #disposed = false;
  #logitsScratch = new Float32Array(0);

  constructor(
    readonly label: string,
    readonly graph: Graph,
    readonly shape: DecoderShape,
    options: BatcherOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 16;
    this.maxQueue = options.maxQueue ?? 64;
    if (!Number.isInteger(this.maxBatch) || this.maxBatch < 1) throw new RangeError(`maxBatch must be ≥ 1, not ${this.maxBatch}`);
    if (!Number.isInteger(this.maxQueue) || this.maxQueue < 0) throw new RangeError(`maxQueue must be ≥ 0, not ${this.maxQueue}`);
  }

  /** Jobs waiting for admission and rows being decoded, for metrics. */
  get load(): { waiting: number; activeJobs: number; activeRows: number } {
    return {
      waiting: this.#waiting.length,
      activeJobs: this.#active.length,
      activeRows: this.#active.reduce((n, s) => n + s.job.rows.length, 0),
    };
  }

  /**
   * Queues a job; resolves when its `step` returns null. Rejects with QueueFullError when `maxQueue` jobs already
   * wait, CancelledError when its signal fires (removed at the next step boundary), or the inference error.
   */
  run(job: DecodeJob): Promise<void> {
    if (this.#disposed) return Promise.reject(new ModelDisposedError());
    if (job.rows.length === 0 || job.rows.length > this.maxBatch) {
      return Promise.reject(
        new InvalidRequestError(`${this.label}: a job needs 1 to ${this.maxBatch} rows, it has ${job.rows.length}`),
      );
    }
    if (job.signal?.aborted) return Promise.reject(cancelled(job.signal));
    const queued = this.#queuedBeyondCapacity(job.rows.length);
    if (queued !== undefined && queued >= this.maxQueue && job.followUp !== true) {
      return Promise.reject(
        new QueueFullError(`${this.label}: ${queued} requests are already waiting for a place in the batch (the limit); retry later`),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const slot: Slot = { job, resolve, reject, lengths: [], pending: 0, finished: false };
      if (job.signal !== undefined) {
        const signal = job.signal;
        // A waiting job leaves at once; an active one at the next step boundary (see #dropFinished).
        slot.onAbort = () => {
          const index = this.#waiting.indexOf(slot);
          if (index >= 0) {
            this.#waiting.splice(index, 1);
            this.#settle(slot, cancelled(signal));
          }
        };
        signal.addEventListener('abort', slot.onAbort, { once: true });
      }
      this.#waiting.push(slot);
      // Started on the next turn of the event loop, so that jobs submitted together are prefilled together.
      setImmediate(() => this.#pump());
    });
  }

  /**
   * How many waiting jobs will not fit in the batch at the next admission, when a job of `rows` rows would not fit
   * either; undefined when it would. Jobs that fit the free rows are never refused, so `maxQueue` bounds only the
   * jobs that really wait; follow-up jobs (parts of a request under way) wait without being counted.
   */
  #queuedBeyondCapacity(rows: number): number | undefined {
    let free = this.maxBatch - [...this.#active, ...this.#admitting].reduce((n, s) => n + (s.finished ? 0 : s.job.rows.length), 0);
    let full = false;
    let beyond = 0;
    for (const slot of this.#waiting) {
      if (!full && slot.job.rows.length <= free) free -= slot.job.rows.length;
      else {
        full = true;
        if (slot.job.followUp !== true) beyond += 1;
      }
    }
    return !full && rows <= free ? undefined : beyond;
  }

  /**
   * Rejects every waiting, admitted and active job with ModelDisposedError and refuses new ones; resolves when the
   * run in flight (if any) has returned, so that the graph can be released safely.
   */
  async dispose(): Promise<void> {
    this.#disposed = true;
    for (const slot of [...this.#waiting.splice(0), ...this.#admitting, ...this.#active]) {
      if (slot.finished) continue;
      slot.finished = true;
      this.#settle(slot, new ModelDisposedError());
    }
    this.#active = [];
    this.#admitting = [];
    this.#cache = undefined;
    await this.#loop;
  }

  #pump(): void {
    if (this.#running || this.#disposed) return;
    this.#running = true;
    this.#loop = this.#runLoop();
  }

  async #runLoop(): Promise<void> {
    try {
      while (!this.#disposed && (this.#waiting.length > 0 || this.#active.length > 0)) {
        const start = performance.now();
        try {
          await this.#iteration();
        } catch (error) {
          // A failed run poisons the batched cache: every job in it fails with the error, the queue goes on.
          const failure = error instanceof InferenceError ? error : new InferenceError(`${this.label}: ${String(error)}`, { cause: error });
          for (const slot of this.#active) this.#settle(slot, failure);
          this.#active = [];
          this.#cache = undefined;
        }
        this.stats.busyMs += performance.now() - start;
      }
    } finally {
      this.#running = false;
    }
  }

  async #iteration(): Promise<void> {
    let changed = this.#dropFinished();
    const newcomers = this.#admit();
    let prefilled: Cache | undefined;
    if (newcomers.length > 0) {
      changed = true;
      this.#admitting = newcomers;
      try {
        prefilled = await this.#prefill(newcomers);
      } catch (error) {
        // Only the newcomers were in that run; the active rows and their cache are untouched.
        for (const slot of newcomers) {
          if (!slot.finished) this.#settle(slot, error);
          slot.finished = true;
        }
      }
    }
    this.#admitting = [];
    if (this.#disposed) return;
    if (changed) this.#rebuild(newcomers, prefilled);
    if (this.#active.length === 0) return;
    await this.#decodeStep();
  }

  /** Settles cancelled and finished active jobs; true when the batch lost rows. */
  #dropFinished(): boolean {
    let dropped = false;
    for (const slot of this.#active) {
      if (!slot.finished && slot.job.signal?.aborted) {
        slot.finished = true;
        this.#settle(slot, cancelled(slot.job.signal));
      }
      if (slot.finished) dropped = true;
    }
    return dropped;
  }

  #admit(): Slot[] {
    const taken: Slot[] = [];
    let rows = this.#active.reduce((n, s) => n + (s.finished ? 0 : s.job.rows.length), 0);
    while (this.#waiting.length > 0) {
      const next = this.#waiting[0] as Slot;
      // FIFO: a large job at the head is not overtaken, so it cannot starve.
      if (rows + next.job.rows.length > this.maxBatch) break;
      this.#waiting.shift();
      rows += next.job.rows.length;
      taken.push(next);
    }
    for (const slot of taken) slot.job.onAdmit?.();
    return taken;
  }

  async #prefill(slots: Slot[]): Promise<Cache> {
    const { layers, kvHeads, headDim, dtype, condDim } = this.shape;
    const rows = slots.flatMap((s) => s.job.rows);
    const n = rows.length;
    const usesCond = condDim !== undefined;
    const condLengths = rows.map((r) => (r.cond === undefined || condDim === undefined ? 0 : r.cond.length / condDim));
    const lengths = rows.map((r, i) => (condLengths[i] as number) + r.inputIds.length);
    if (usesCond && rows.some((r, i) => r.inputIds.length > 0 && (condLengths[i] as number) > 0)) {
      // Left padding keeps a row's real positions contiguous only when a row is all condition or all ids.
      throw new InferenceError(`${this.label}: a prefill row with a condition must have no input ids`);
    }
    if (rows.some((r) => r.positions !== undefined && r.positions.length !== r.inputIds.length)) {
      throw new InferenceError(`${this.label}: a prefill row needs one position per input id`);
    }
    const total = Math.max(...lengths);
    const maxIds = Math.max(...rows.map((r) => r.inputIds.length));
    const maxCond = Math.max(...condLengths);
    if (maxIds > 0 && maxCond > 0 && maxIds !== total) {
      throw new InferenceError(`${this.label}: cannot prefill condition rows and id rows together`);
    }
    const ids = new Array<number>(n * maxIds).fill(this.shape.padId);
    const mask = new Array<number>(n * total).fill(0);
    const positions = new Array<number>(n * total).fill(0);
    rows.forEach((row, r) => {
      const length = lengths[r] as number;
      for (let j = 0; j < row.inputIds.length; j++) ids[r * maxIds + maxIds - row.inputIds.length + j] = row.inputIds[j] as number;
      for (let j = 0; j < length; j++) {
        mask[r * total + total - length + j] = 1;
        positions[r * total + total - length + j] = row.positions?.[j] ?? j;
      }
    });
    const feeds: Record<string, Tensor> = {
      input_ids: int64Tensor(ids, [n, maxIds]),
      attention_mask: int64Tensor(mask, [n, total]),
      position_ids: int64Tensor(positions, [n, total]),
    };
    if (usesCond) {
      const cond = new Float32Array(n * maxCond * condDim);
      rows.forEach((row, r) => {
        if (row.cond === undefined) return;
        cond.set(row.cond, (r * maxCond + maxCond - (condLengths[r] as number)) * condDim);
      });
      feeds.cond = floatTensor(dtype, cond, [n, maxCond, condDim]);
    }
    const empty = allocFloat(dtype, 0);
    for (let i = 0; i < layers; i++) {
      feeds[`past_key_values.${i}.key`] = rawFloatTensor(dtype, empty, [n, kvHeads, 0, headDim]);
      feeds[`past_key_values.${i}.value`] = rawFloatTensor(dtype, empty, [n, kvHeads, 0, headDim]);
    }
    const { outputs, ms } = await this.graph.run(feeds);
    this.stats.prefills += 1;
    this.stats.ortMs += ms;
    const cache = this.#cacheFrom(outputs, n, total);
    const logits = this.#logitRows(outputs, n);
    let row = 0;
    for (const slot of slots) {
      const count = slot.job.rows.length;
      slot.lengths = lengths.slice(row, row + count);
      this.#advance(slot, logits.slice(row, row + count), { kind: 'prefill', ortMs: ms, jobs: slots.length });
      row += count;
    }
    return cache;
  }

  async #decodeStep(): Promise<void> {
    const cache = this.#cache;
    if (cache === undefined) throw new InferenceError(`${this.label}: no cache for the active rows`);
    const { layers, kvHeads, headDim, dtype, condDim } = this.shape;
    const n = cache.rows;
    const past = cache.length;
    const ids = new BigInt64Array(n);
    const mask = new BigInt64Array(n * (past + 1));
    const positions = new BigInt64Array(n);
    let r = 0;
    for (const slot of this.#active) {
      slot.lengths.forEach((length, row) => {
        ids[r] = BigInt(slot.pending);
        mask.fill(1n, r * (past + 1) + past - length, (r + 1) * (past + 1));
        positions[r] = BigInt(slot.job.nextPosition?.(row, length) ?? length);
        r++;
      });
    }
    const feeds: Record<string, Tensor> = {
      input_ids: int64Tensor(ids, [n, 1]),
      attention_mask: int64Tensor(mask, [n, past + 1]),
      position_ids: int64Tensor(positions, [n, 1]),
    };
    if (condDim !== undefined) feeds.cond = floatTensor(dtype, new Float32Array(0), [n, 0, condDim]);
    for (let i = 0; i < layers; i++) {
      feeds[`past_key_values.${i}.key`] = rawFloatTensor(dtype, cache.keys[i] as FloatData, [n, kvHeads, past, headDim]);
      feeds[`past_key_values.${i}.value`] = rawFloatTensor(dtype, cache.values[i] as FloatData, [n, kvHeads, past, headDim]);
    }
    const { outputs, ms } = await this.graph.run(feeds);
    if (this.#disposed) return;
    this.stats.steps += 1;
    this.stats.rowSteps += n;
    this.stats.maxRows = Math.max(this.stats.maxRows, n);
    if (this.#active.length > 1) this.stats.batchedSteps += 1;
    this.stats.ortMs += ms;
    this.#cache = this.#cacheFrom(outputs, n, past + 1);
    const logits = this.#logitRows(outputs, n);
    r = 0;
    const info: StepInfo = { kind: 'decode', ortMs: ms, jobs: this.#active.length };
    for (const slot of this.#active) {
      const count = slot.lengths.length;
      for (let j = 0; j < count; j++) slot.lengths[j] = (slot.lengths[j] as number) + 1;
      this.#advance(slot, logits.slice(r, r + count), info);
      r += count;
    }
  }

  /** Lets the job pick its next token; a job that throws fails alone. */
  #advance(slot: Slot, logits: Float32Array[], info: StepInfo): void {
    if (slot.finished) return;
    let next: number | null;
    try {
      next = slot.job.step(logits, info);
    } catch (error) {
      slot.finished = true;
      this.#settle(slot, error);
      return;
    }
    if (next === null) {
      slot.finished = true;
      this.#settle(slot);
    } else {
      slot.pending = next;
    }
  }

  /**
   * Builds the batched cache of the surviving active rows plus the prefilled newcomers that go on, each row's real
   * suffix copied right-aligned into a cache just long enough for the longest row.
   */
  #rebuild(newcomers: Slot[], prefilled: Cache | undefined): void {
    const sources: { slot: Slot; cache: Cache; firstRow: number }[] = [];
    let row = 0;
    for (const slot of this.#active) {
      if (!slot.finished && this.#cache !== undefined) sources.push({ slot, cache: this.#cache, firstRow: row });
      row += slot.lengths.length;
    }
    row = 0;
    for (const slot of newcomers) {
      if (!slot.finished && prefilled !== undefined) sources.push({ slot, cache: prefilled, firstRow: row });
      row += slot.job.rows.length;
    }
    this.#active = sources.map((s) => s.slot);
    if (sources.length === 0) {
      this.#cache = undefined;
      return;
    }
    const { layers, kvHeads, headDim, dtype } = this.shape;
    const rows = sources.reduce((n, s) => n + s.slot.lengths.length, 0);
    const length = Math.max(...sources.flatMap((s) => s.slot.lengths));
    const keys: FloatData[] = [];
    const values: FloatData[] = [];
    for (let layer = 0; layer < layers; layer++) {
      for (const [out, from] of [
        [keys, (c: Cache) => c.keys[layer] as FloatData],
        [values, (c: Cache) => c.values[layer] as FloatData],
      ] as const) {
        const data = allocFloat(dtype, rows * kvHeads * length * headDim);
        let target = 0;
        for (const source of sources) {
          const src = from(source.cache);
          const srcLength = source.cache.length;
          source.slot.lengths.forEach((real, j) => {
            const srcRow = source.firstRow + j;
            for (let h = 0; h < kvHeads; h++) {
              const srcStart = ((srcRow * kvHeads + h) * srcLength + srcLength - real) * headDim;
              const dstStart = ((target * kvHeads + h) * length + length - real) * headDim;
              data.set(src.subarray(srcStart, srcStart + real * headDim), dstStart);
            }
            target++;
          });
        }
        out.push(data);
      }
    }
    this.#cache = { keys, values, rows, length };
  }

  #cacheFrom(outputs: Record<string, Tensor>, rows: number, length: number): Cache {
    const keys: FloatData[] = [];
    const values: FloatData[] = [];
    for (let i = 0; i < this.shape.layers; i++) {
      const key = outputs[`present.${i}.key`];
      const value = outputs[`present.${i}.value`];
      if (key === undefined || value === undefined) throw new InferenceError(`${this.label}: missing present.${i}.*`);
      const expected = [rows, this.shape.kvHeads, length, this.shape.headDim].join(',');
      if (key.dims.join(',') !== expected) {
        throw new InferenceError(`${this.label}: present.${i}.key has shape [${key.dims.join(', ')}], expected [${expected}]`);
      }
      keys.push(floatData(key));
      values.push(floatData(value));
    }
    return { keys, values, rows, length };
  }

  #logitRows(outputs: Record<string, Tensor>, rows: number): Float32Array[] {
    const tensor = outputs.logits;
    if (tensor === undefined || tensor.dims.length !== 2 || tensor.dims[0] !== rows) {
      throw new InferenceError(`${this.label}: logits must be [${rows}, V], found [${tensor?.dims.join(', ')}]`);
    }
    const width = tensor.dims[1] as number;
    let data: Float32Array;
    if (tensor.type === 'float32') data = tensor.data as Float32Array;
    else {
      // float16 logits are widened into a scratch reused across steps.
      const wide = readFloat32(tensor);
      if (this.#logitsScratch.length < wide.length) this.#logitsScratch = new Float32Array(wide.length);
      this.#logitsScratch.set(wide);
      data = this.#logitsScratch;
    }
    return Array.from({ length: rows }, (_, r) => data.subarray(r * width, (r + 1) * width));
  }

  #settle(slot: Slot, error?: unknown): void {
    if (slot.onAbort !== undefined) slot.job.signal?.removeEventListener('abort', slot.onAbort);
    if (error === undefined) slot.resolve();
    else slot.reject(error);
  }
}

function cancelled(signal: AbortSignal): CancelledError {
  const reason = signal.reason as unknown;
  return reason instanceof CancelledError ? reason : new CancelledError('the request was cancelled', { cause: reason });
}
