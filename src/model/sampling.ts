import { InvalidRequestError } from './errors.ts';
import type { Rng } from './random.ts';

/**
 * The generation loop's sampling, composed from small logits processors that each change one Float32Array row of
 * logits in place, then a sampler. Order (as in transformers' and LlamaGen's generate): CFG mix (generation and de-tokenizer),
 * repetition penalty, token constraint, temperature, top-k, top-p, then argmax or a multinomial draw.
 *
 * Masked tokens are set to -Infinity, which `exp` turns into an exact 0. Processors keep their scratch buffers for
 * the life of the request, so that a decode step allocates nothing vocabulary-sized.
 */

/** Settings shared by every sampled stage. */
export interface SamplingSettings {
  /** 0 means greedy (argmax); otherwise logits are divided by it before sampling. */
  temperature: number;
  /** Keep only the k most likely tokens (ties at the k-th value are kept); 0 disables. */
  topK: number;
  /** Keep the smallest set of most likely tokens whose probability reaches topP; 1 disables. */
  topP: number;
}

/** Sampling of text answers (LLM). Defaults come from the manifest's `sampling.text`. */
export interface TextSampling extends SamplingSettings {
  /** transformers' repetition penalty over every id already in the sequence (prompt and answer); 1 disables. */
  repetitionPenalty: number;
  /** The answer budget; decoding stops there if no `eos` id came first. */
  maxNewTokens: number;
}

/** Sampling of image tokens (LLM). Defaults come from the manifest's `sampling.image`. */
export interface ImageSampling extends SamplingSettings {
  /**
   * Classifier-free guidance of the image by the request's text: `uncond + cfgScale · (cond − uncond)`, where the
   * unconditional row is the same request (history and, for an edit, input image included) with the manifest's
   * `templates.unconditionalPrompt` as its prompt; 1 disables it.
   */
  cfgScale: number;
}

/** Sampling of VQ codes (AR-DTok). Defaults come from the manifest's `sampling.detok`. */
export interface DetokSampling extends SamplingSettings {
  /** Classifier-free guidance: `uncond + cfgScale · (cond − uncond)`; 1 disables the unconditional rows. */
  cfgScale: number;
}

/** One step of a processing pipeline over a row of logits. */
export interface LogitsProcessor {
  apply(logits: Float32Array): void;
  /** Told every token the sequence takes, after it is sampled. */
  observe?(token: number): void;
}

/** transformers' RepetitionPenaltyLogitsProcessor: positive logits are divided by the penalty, negative multiplied. */
export class RepetitionPenalty implements LogitsProcessor {
  readonly #seen = new Set<number>();

  constructor(
    readonly penalty: number,
    context: Iterable<number> = [],
  ) {
    for (const id of context) this.#seen.add(id);
  }

  apply(logits: Float32Array): void {
    for (const id of this.#seen) {
      const value = logits[id];
      if (value === undefined) continue;
      logits[id] = value > 0 ? value / this.penalty : value * this.penalty;
    }
  }

  observe(token: number): void {
    this.#seen.add(token);
  }
}

/** Allows only ids in `[start, end)`: image tokens while an image is written, VQ codes in the de-tokenizer. */
export class AllowedRange implements LogitsProcessor {
  constructor(
    readonly start: number,
    readonly end: number,
  ) {}

  apply(logits: Float32Array): void {
    logits.fill(-Infinity, 0, this.start);
    logits.fill(-Infinity, this.end);
  }
}

/** Forces one token: every other logit becomes -Infinity. */
export class ForcedToken implements LogitsProcessor {
  constructor(readonly token: number) {}

  apply(logits: Float32Array): void {
    const keep = logits[this.token] ?? 0;
    logits.fill(-Infinity);
    logits[this.token] = Number.isFinite(keep) ? keep : 0;
  }
}

export class Temperature implements LogitsProcessor {
  readonly #inverse: number;

  constructor(readonly temperature: number) {
    this.#inverse = 1 / temperature;
  }

  apply(logits: Float32Array): void {
    if (this.temperature === 1) return;
    for (let i = 0; i < logits.length; i++) logits[i] = (logits[i] as number) * this.#inverse;
  }
}

/** Keeps the k largest logits (and ties with the k-th). A min-heap of size k: O(V log k), no V-sized scratch. */
export class TopK implements LogitsProcessor {
  readonly #heap: Float32Array;

  constructor(readonly k: number) {
    this.#heap = new Float32Array(k);
  }

  apply(logits: Float32Array): void {
    const k = this.k;
    if (k <= 0 || k >= logits.length) return;
    const heap = this.#heap;
    let size = 0;
    for (let i = 0; i < logits.length; i++) {
      const v = logits[i] as number;
      if (size < k) {
        // sift up
        let c = size++;
        heap[c] = v;
        while (c > 0) {
          const p = (c - 1) >> 1;
          if ((heap[p] as number) <= (heap[c] as number)) break;
          const t = heap[p] as number;
          heap[p] = heap[c] as number;
          heap[c] = t;
          c = p;
        }
      } else if (v > (heap[0] as number)) {
        heap[0] = v;
        let p = 0;
        for (;;) {
          const l = 2 * p + 1;
          const r = l + 1;
          let m = p;
          if (l < k && (heap[l] as number) < (heap[m] as number)) m = l;
          if (r < k && (heap[r] as number) < (heap[m] as number)) m = r;
          if (m === p) break;
          const t = heap[p] as number;
          heap[p] = heap[m] as number;
          heap[m] = t;
          p = m;
        }
      }
    }
    const threshold = heap[0] as number;
    for (let i = 0; i < logits.length; i++) if ((logits[i] as number) < threshold) logits[i] = -Infinity;
  }
}

/**
 * Nucleus filtering. Instead of sorting the vocabulary every step, a quickselect-style partition by probability
 * mass finds the smallest probability still inside the nucleus in expected O(V); tokens below it are masked (ties
 * at the threshold are kept).
 */
export class TopP implements LogitsProcessor {
  #probs: Float32Array = new Float32Array(0);
  #index: Uint32Array = new Uint32Array(0);

  constructor(readonly p: number) {}

  apply(logits: Float32Array): void {
    if (this.p >= 1) return;
    const n = logits.length;
    if (this.#probs.length !== n) {
      this.#probs = new Float32Array(n);
      this.#index = new Uint32Array(n);
    }
    const probs = this.#probs;
    const index = this.#index;
    let max = -Infinity;
    for (let i = 0; i < n; i++) if ((logits[i] as number) > max) max = logits[i] as number;
    if (max === -Infinity) return;
    let sum = 0;
    let count = 0;
    for (let i = 0; i < n; i++) {
      const e = Math.exp((logits[i] as number) - max);
      probs[i] = e;
      sum += e;
      if (e > 0) index[count++] = i;
    }
    const target = this.p * sum;
    let lo = 0;
    let hi = count;
    let above = 0; // mass of the candidates already known to be inside, all larger than anything in [lo, hi)
    let threshold = 0;
    for (;;) {
      const pivot = probs[index[(lo + hi) >>> 1] as number] as number;
      // three-way partition of index[lo, hi): greater | equal | smaller
      let lt = lo;
      let i = lo;
      let gt = hi;
      let greater = 0;
      let equal = 0;
      while (i < gt) {
        const id = index[i] as number;
        const v = probs[id] as number;
        if (v > pivot) {
          index[i] = index[lt] as number;
          index[lt] = id;
          lt++;
          i++;
          greater += v;
        } else if (v < pivot) {
          gt--;
          index[i] = index[gt] as number;
          index[gt] = id;
        } else {
          i++;
          equal += v;
        }
      }
      if (above + greater >= target && lt > lo) {
        hi = lt;
      } else if (above + greater + equal >= target || gt >= hi) {
        threshold = pivot;
        break;
      } else {
        above += greater + equal;
        lo = gt;
      }
    }
    for (let j = 0; j < n; j++) if ((probs[j] as number) < threshold) logits[j] = -Infinity;
  }
}

/**
 * The next token of a job whose rows are one conditional row, plus an unconditional one when `cfgScale` ≠ 1
 * (classifier-free guidance): the rows' logits are mixed into the first, then `pipeline` picks.
 */
export function guidedPick(pipeline: SamplingPipeline, cfgScale: number): (logits: Float32Array[]) => number {
  return (logits) => {
    const conditional = logits[0] as Float32Array;
    if (cfgScale !== 1) mixCfg(conditional, logits[1] as Float32Array, cfgScale);
    return pipeline.next(conditional);
  };
}

/**
 * The next token of a job whose rows read the same answer from different views of one image (views.ts): the rows'
 * logits are averaged into the first, then `pipeline` picks. Averaging logits averages the rows' log-probabilities
 * up to a constant per step, i.e. the normalised product of the views' distributions.
 */
export function averagedPick(pipeline: SamplingPipeline): (logits: Float32Array[]) => number {
  return (logits) => {
    const first = logits[0] as Float32Array;
    const n = logits.length;
    if (n > 1) {
      for (let i = 0; i < first.length; i++) {
        let sum = first[i] as number;
        for (let r = 1; r < n; r++) sum += (logits[r] as Float32Array)[i] as number;
        first[i] = sum / n;
      }
    }
    return pipeline.next(first);
  };
}

/** Classifier-free guidance on logits, written into `cond`: `uncond + scale · (cond − uncond)`. */
export function mixCfg(cond: Float32Array, uncond: Float32Array, scale: number): void {
  for (let i = 0; i < cond.length; i++) {
    const u = uncond[i] as number;
    cond[i] = u + scale * ((cond[i] as number) - u);
  }
}

/** First index of the largest value (as torch.argmax). */
export function argmax(logits: Float32Array): number {
  let best = 0;
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i] as number;
    if (v > max) {
      max = v;
      best = i;
    }
  }
  return best;
}

/**
 * One multinomial draw from softmax(logits), using one `rng.nextFloat()`. Overwrites `logits` with unnormalised
 * probabilities (the row is spent once sampled).
 */
export function sampleMultinomial(logits: Float32Array, rng: Rng): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if ((logits[i] as number) > max) max = logits[i] as number;
  if (max === -Infinity) return 0;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    const e = Math.exp((logits[i] as number) - max);
    logits[i] = e;
    sum += e;
  }
  const u = rng.nextFloat() * sum;
  let acc = 0;
  let last = 0;
  for (let i = 0; i < logits.length; i++) {
    const e = logits[i] as number;
    if (e === 0) continue;
    acc += e;
    last = i;
    if (u < acc) return i;
  }
  return last; // only reached through rounding of the running sum
}

/** The processors of one sequence plus its sampler. Build one per request with {@link createPipeline}. */
export class SamplingPipeline {
  constructor(
    readonly processors: readonly LogitsProcessor[],
    readonly greedy: boolean,
    readonly rng: Rng,
  ) {}

  /** Processes `logits` in place, picks the next token and tells the processors about it. */
  next(logits: Float32Array): number {
    for (const processor of this.processors) processor.apply(logits);
    const token = this.greedy ? argmax(logits) : sampleMultinomial(logits, this.rng);
    for (const processor of this.processors) processor.observe?.(token);
    return token;
  }
}

export interface PipelineOptions {
  settings: SamplingSettings & { repetitionPenalty?: number };
  rng: Rng;
  /** Only ids in `[start, end)` may be sampled. */
  allowed?: { start: number; end: number };
  /** Ids already in the sequence, for the repetition penalty. */
  context?: Iterable<number>;
}

export function createPipeline(options: PipelineOptions): SamplingPipeline {
  const { settings } = options;
  const processors: LogitsProcessor[] = [];
  const penalty = settings.repetitionPenalty ?? 1;
  if (penalty !== 1) processors.push(new RepetitionPenalty(penalty, options.context));
  if (options.allowed !== undefined) processors.push(new AllowedRange(options.allowed.start, options.allowed.end));
  const greedy = settings.temperature === 0;
  if (!greedy) {
    // top-k and top-p never change the argmax, so greedy decoding skips them.
    if (settings.temperature !== 1) processors.push(new Temperature(settings.temperature));
    if (settings.topK > 0) processors.push(new TopK(settings.topK));
    if (settings.topP < 1) processors.push(new TopP(settings.topP));
  }
  return new SamplingPipeline(processors, greedy, options.rng);
}

/** Merges request overrides over defaults and checks every field; `what` names the settings in errors. */
export function resolveSettings<T extends SamplingSettings>(what: string, defaults: T, overrides?: Partial<T>): T {
  const merged = { ...defaults } as T;
  if (overrides !== undefined) {
    for (const [key, value] of Object.entries(overrides)) {
      if (value !== undefined) (merged as Record<string, unknown>)[key] = value;
    }
  }
  const bad = (field: string, rule: string, value: unknown) =>
    new InvalidRequestError(`${what}.${field} must be ${rule}, not ${JSON.stringify(value)}`);
  for (const [field, value] of Object.entries(merged)) {
    if (typeof value !== 'number' || !Number.isFinite(value)) throw bad(field, 'a finite number', value);
  }
  if (merged.temperature < 0) throw bad('temperature', '≥ 0', merged.temperature);
  if (!Number.isInteger(merged.topK) || merged.topK < 0) throw bad('topK', 'an integer ≥ 0', merged.topK);
  if (!(merged.topP > 0 && merged.topP <= 1)) throw bad('topP', 'in (0, 1]', merged.topP);
  const record = merged as unknown as Record<string, number>;
  if ('repetitionPenalty' in record && !((record.repetitionPenalty as number) > 0)) {
    throw bad('repetitionPenalty', '> 0', record.repetitionPenalty);
  }
  if ('maxNewTokens' in record) {
    const m = record.maxNewTokens as number;
    if (!Number.isInteger(m) || m < 1) throw bad('maxNewTokens', 'an integer ≥ 1', m);
  }
  if ('cfgScale' in record && (record.cfgScale as number) < 0) throw bad('cfgScale', '≥ 0', record.cfgScale);
  return merged;
}
