import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { type Bundle, graphDtype, type LoadProgress, loadBundle } from './bundle.ts';
import { type BatcherStats, type DecodeJob, DecoderBatcher, type RowPrefill, type StepInfo } from './decoder.ts';
import { type PositionRule, positionRule } from './positions.ts';
import { CancelledError, InferenceError, InvalidRequestError, ModelDisposedError, PromptTooLongError } from './errors.ts';
import { imageToPixels, pixelsToPng } from './images.ts';
import { editingOf, findScale, type Manifest, type ScaleInfo, type SelfCheck, understandingOf } from './manifest.ts';
import { type ExecutionProvider, floatTensor, int64Tensor, readFloat32, readInt64 } from './onnx-backend.ts';
import { type ImageTokens, PromptBuilder, type PromptRequest, type Turn } from './prompt.ts';
import { Rng, RNG_STREAM, resolveSeed } from './random.ts';
import { type ImageJudge, loadJudges, selfCheck, type SelfCheckReport, type SelfCheckSteps } from './self-check.ts';
import { resolveViewScales } from './views.ts';
import {
  averagedPick,
  createPipeline,
  type DetokSampling,
  guidedPick,
  type ImageSampling,
  resolveSettings,
  type TextSampling,
} from './sampling.ts';

/** How to open a model. */
export interface TarModelOptions {
  /** A `dialect-bundle/1` folder (docs/bundle-format.md). */
  bundleDir: string;
  /** onnxruntime execution provider. Defaults to `'cpu'`. */
  provider?: ExecutionProvider;
  /**
   * onnxruntime intra-op threads per graph. Defaults to 1 on the CPU for a small bundle (see
   * defaultIntraOpThreads), else onnxruntime's choice (all physical cores).
   */
  intraOpThreads?: number;
  /** Most rows decoded together per decoder, at least 2 (a guided request takes two rows). Defaults to 16. */
  maxBatch?: number;
  /** Most requests waiting per decoder before QueueFullError. Defaults to 64. */
  maxQueue?: number;
  /** Called as each file of the bundle is read or opened. */
  onLoadProgress?: (event: LoadProgress) => void;
  /**
   * Judges of the bundle's `selfCheck` by name (self-check.ts), or the URL of a module that exports them as `judges`
   * (what crosses to a model thread). A model not given its bundle's judge cannot check (ModelInfo.selfCheck false: a
   * request that asks is refused with InvalidRequestError).
   */
  judges?: Record<string, ImageJudge>;
  judgeModule?: string;
}

/**
 * An image given to a request: encoded bytes (PNG, JPEG, WebP), or tokens from an earlier encoding (skips the
 * encoder), which may carry the same image's tokens at other scales (`views`, as `understand` returns them in
 * `imageViews`) for an understanding request to read as well.
 */
export type ImageInput = { bytes: Uint8Array } | ImageWithViews;

/** An image's tokens, with the same image's tokens at other scales when it has them (views.ts). */
export type ImageWithViews = ImageTokens & { views?: ImageTokens[] };

export type ProgressStage = 'encode' | 'prefill' | 'decode' | 'detokenize' | 'vq-decode';

/** Progress of one request: `done` of `total` units of the stage (tokens for decode and detokenize). */
export interface ProgressEvent {
  stage: ProgressStage;
  done: number;
  total: number;
}

/** Wall times of one request in milliseconds. */
export interface Timings {
  /** TA-Tok encoder, including image decoding and resizing. 0 when the image came as tokens. */
  encode: number;
  /** LLM prefill up to the first sampled token. */
  prefill: number;
  /** LLM decode steps after the first token. */
  decode: number;
  /** Tokens the LLM produced (answer tokens or image tokens). */
  decodeTokens: number;
  /** TA-Tok decoder plus AR-DTok (prefill and decode). */
  detokenize: number;
  /** VQ decoder plus PNG encoding. */
  vqDecode: number;
  /** Waiting for a place in a decoder batch. */
  queued: number;
  /** Inside onnxruntime runs this request took part in (a shared batched step counts fully for each member). */
  ort: number;
  /** `total - ort - queued`: the runtime's own work (sampling, tensors, cache merges, images) and batch-mates' share. */
  outsideOrt: number;
  total: number;
}

interface CommonRequest {
  /** Earlier turns of the conversation, oldest first. */
  history?: Turn[];
  /** Seed of the request's random generator, an integer in [0, 2^53). Defaults to a random one, reported back. */
  seed?: number;
  /** Aborting rejects the request with CancelledError; a decoding request leaves its batch at the next step. */
  signal?: AbortSignal;
  onProgress?: (event: ProgressEvent) => void;
}

export interface UnderstandRequest extends CommonRequest {
  /** The image asked about. May be left out for a follow-up question about an image already in `history`. */
  image?: ImageInput;
  prompt: string;
  /** Scale at which image bytes are encoded. Defaults to the manifest's `understanding.scale`. */
  scale?: number;
  /**
   * More scales at which image bytes are encoded, each one more view of the image that the answer is read from
   * (views.ts); defaults to the manifest's `understanding.viewScales`, `[]` reads the image at `scale` alone. An
   * image given as tokens is read from the views it carries instead.
   */
  viewScales?: number[];
  /** Overrides of the manifest's `sampling.text`. */
  sampling?: Partial<TextSampling>;
}

export interface UnderstandResult<I = ImageTokens> {
  text: string;
  /** The answer's token ids, without the eos id that ended it. */
  answerIds: number[];
  /** The image as tokens, to store with the turn (undefined when the request had no image). */
  imageTokens: I;
  /** The image's other views that the answer was read from, to store beside `imageTokens` ([] for none). */
  imageViews: ImageTokens[];
  seed: number;
  timings: Timings;
}

export interface GenerateRequest extends CommonRequest {
  prompt: string;
  /** Scale of the image tokens the LLM writes. Defaults to the manifest's `defaultScale`. */
  scale?: number;
  /** Overrides of the manifest's `sampling.image` (LLM image tokens). */
  sampling?: Partial<ImageSampling>;
  /** Overrides of the manifest's `sampling.detok` (AR-DTok VQ codes). */
  detokSampling?: Partial<DetokSampling>;
  /**
   * true: the model checks the image it writes by reading it, and writes more when the check fails (the bundle's
   * `selfCheck`, self-check.ts; InvalidRequestError where the model cannot check: ModelInfo.selfCheck). Off by
   * default: a failed check costs the candidates' LLM work (tar-shapes: ~3.4× a generation's time).
   */
  selfCheck?: boolean;
}

export interface EditRequest extends GenerateRequest {
  image: ImageInput;
  /**
   * Scale of the image tokens the LLM writes. Defaults to the input's scale when it is given as tokens, else to the
   * manifest's `editing.scale` (editingOf).
   */
  scale?: number;
  /** Scale at which image bytes are encoded. Defaults to `scale`. */
  imageScale?: number;
}

export interface GeneratedImage extends ImageTokens {
  png: Buffer;
  width: number;
  height: number;
  /** The AR-DTok's VQ codes (row-major over `vq.grid`²) that the VQ decoder turned into the pixels. */
  vqCodes: number[];
}

export interface ImageResult {
  image: GeneratedImage;
  /** Edit only: the input image as tokens. */
  inputImageTokens?: ImageTokens;
  /** How the model checked the image (self-check.ts); absent when it did not. */
  selfCheck?: SelfCheckReport;
  seed: number;
  timings: Timings;
}

export interface RenderRequest extends ImageTokens {
  /** Seed of the AR-DTok's draws; the same seed as `generate` reproduces its pixels (at concurrency 1). */
  seed?: number;
  detokSampling?: Partial<DetokSampling>;
  signal?: AbortSignal;
  onProgress?: (event: ProgressEvent) => void;
}

export interface RenderResult {
  png: Buffer;
  width: number;
  height: number;
  /** The AR-DTok's VQ codes (row-major over `vq.grid`²). */
  vqCodes: number[];
  seed: number;
  timings: Timings;
}

export interface ModelInfo {
  name: string;
  version: string;
  description: string;
  experimental: string[];
  scales: ScaleInfo[];
  defaultScale: number;
  /** How understanding reads an image given as pixels: its scale, and the scales of its other views (views.ts). */
  understanding: { scale: number; viewScales: number[] };
  /** How an edit reads an image given as pixels: the scale it is encoded and the edit written at. */
  editing: { scale: number };
  /** Whether a generate or edit request may ask for a self-check: the bundle has one and the model its judge. */
  selfCheck: boolean;
  /** Side of generated images in pixels. */
  imageSize: number;
  defaults: Manifest['sampling'];
  provider: ExecutionProvider;
  maxBatch: number;
}

export interface ModelMetrics {
  llm: BatcherStats & { waiting: number; activeJobs: number; activeRows: number };
  arDTok: BatcherStats & { waiting: number; activeJobs: number; activeRows: number };
}

/** Per-request stopwatch: stage times and time inside onnxruntime. */
class RequestClock {
  readonly start = performance.now();
  readonly t: Timings = {
    encode: 0,
    prefill: 0,
    decode: 0,
    decodeTokens: 0,
    detokenize: 0,
    vqDecode: 0,
    queued: 0,
    ort: 0,
    outsideOrt: 0,
    total: 0,
  };

  finish(): Timings {
    this.t.total = performance.now() - this.start;
    this.t.outsideOrt = Math.max(0, this.t.total - this.t.ort - this.t.queued);
    return { ...this.t };
  }
}

/**
 * One sequence (or lockstep rows) in a decoder batch: picks a token from the rows' logits, stops on its own rule,
 * and records when it was admitted, prefilled and finished.
 */
class SequenceJob implements DecodeJob {
  readonly tokens: number[] = [];
  readonly submittedAt = performance.now();
  admittedAt = 0;
  prefilledAt = 0;
  finishedAt = 0;
  ortMs = 0;
  followUp = false;

  constructor(
    readonly rows: RowPrefill[],
    readonly signal: AbortSignal | undefined,
    private readonly pick: (logits: Float32Array[]) => number,
    /** Ends before `token` (not kept), e.g. an eos id. */
    private readonly endsBefore: (token: number) => boolean,
    private readonly limit: number,
    private readonly onToken: (count: number) => void,
    private readonly onStart: () => void,
    private readonly onPrefilled: () => void,
  ) {}

  onAdmit(): void {
    this.admittedAt = performance.now();
    this.onStart();
  }

  nextPosition?: (row: number, length: number) => number;

  step(logits: Float32Array[], info: StepInfo): number | null {
    this.ortMs += info.ortMs;
    const token = this.pick(logits);
    if (info.kind === 'prefill') {
      this.prefilledAt = performance.now();
      this.onPrefilled();
    }
    if (this.endsBefore(token)) return this.#end();
    this.tokens.push(token);
    this.onToken(this.tokens.length);
    return this.tokens.length >= this.limit ? this.#end() : token;
  }

  #end(): null {
    this.finishedAt = performance.now();
    return null;
  }
}

/**
 * Tar on onnxruntime-node: understanding (image → text), generation (text → image) and editing (image + text →
 * image) as one next-token loop over the bundle's LLM, with TA-Tok on the way in and AR-DTok + VQ on the way out.
 *
 * Concurrent requests share LLM and AR-DTok decode steps (continuous batching, see decoder.ts); every request has
 * its own settings, random generator, progress callback and AbortSignal. Nothing about a request is stored on the
 * model object.
 */
export class TarModel {
  readonly manifest: Manifest;
  readonly #bundle: Bundle;
  readonly #prompts: PromptBuilder;
  readonly #llm: DecoderBatcher;
  readonly #arDTok: DecoderBatcher;
  readonly #provider: ExecutionProvider;
  /** The LLM's position ids of a token sequence (the manifest's `llm.positions`); undefined: the indices. */
  readonly #positions: PositionRule | undefined;
  /** The judge of the bundle's self-check, when the model was given it. */
  readonly #judge: ImageJudge | undefined;
  #disposed = false;

  private constructor(bundle: Bundle, options: TarModelOptions, judges: Record<string, ImageJudge>) {
    this.#bundle = bundle;
    this.manifest = bundle.manifest;
    this.#provider = options.provider ?? 'cpu';
    this.#prompts = new PromptBuilder(bundle.manifest, bundle.tokenizer);
    this.#positions = positionRule(bundle.manifest, bundle.tokenizer);
    const m = bundle.manifest;
    this.#judge = m.selfCheck === undefined ? undefined : judges[m.selfCheck.judge];
    // A guided request takes two rows (its unconditional branch), so each decoder holds at least two.
    const batching = {
      maxBatch: Math.max(2, options.maxBatch ?? 16),
      ...(options.maxQueue === undefined ? {} : { maxQueue: options.maxQueue }),
    };
    this.#llm = new DecoderBatcher(
      'llm',
      bundle.graphs.llm,
      { layers: m.llm.layers, kvHeads: m.llm.kvHeads, headDim: m.llm.headDim, dtype: m.llm.dtype, padId: m.tokens.pad },
      batching,
    );
    this.#arDTok = new DecoderBatcher(
      'arDTok',
      bundle.graphs.arDTok,
      {
        layers: m.arDTok.layers,
        kvHeads: m.arDTok.kvHeads,
        headDim: m.arDTok.headDim,
        dtype: m.arDTok.dtype,
        condDim: m.arDTok.condDim,
        padId: 0,
      },
      batching,
    );
  }

  /** Opens and validates a bundle (see loadBundle) and prepares the decoders. */
  static async load(options: TarModelOptions): Promise<TarModel> {
    const intraOpThreads = options.intraOpThreads ?? (await defaultIntraOpThreads(options.bundleDir, options.provider));
    const bundle = await loadBundle(options.bundleDir, {
      ...(options.provider === undefined ? {} : { provider: options.provider }),
      ...(intraOpThreads === undefined ? {} : { intraOpThreads }),
      ...(options.onLoadProgress === undefined ? {} : { onProgress: options.onLoadProgress }),
    });
    try {
      const judges = options.judges ?? (options.judgeModule === undefined ? {} : await loadJudges(options.judgeModule));
      return new TarModel(bundle, options, judges);
    } catch (error) {
      await bundle.dispose();
      throw error;
    }
  }

  info(): ModelInfo {
    const m = this.manifest;
    return {
      name: m.name,
      version: m.version,
      description: m.description,
      experimental: [...m.experimental],
      scales: m.scales.map((s) => ({ ...s })),
      defaultScale: m.defaultScale,
      understanding: understandingOf(m),
      editing: editingOf(m),
      selfCheck: m.selfCheck !== undefined && this.#judge !== undefined,
      imageSize: m.vq.outputSize,
      defaults: structuredClone(m.sampling),
      provider: this.#provider,
      maxBatch: this.#llm.maxBatch,
    };
  }

  /** Batch counters of both decoders (for tests, metrics and benchmarks). */
  metrics(): ModelMetrics {
    return {
      llm: { ...this.#llm.stats, ...this.#llm.load },
      arDTok: { ...this.#arDTok.stats, ...this.#arDTok.load },
    };
  }

  /**
   * TA-Tok codes of an image at a scale (argmax, deterministic). Absent a scale, the one the model reads images given
   * as pixels at (`understanding.scale`: the scale a question's upload is stored at), not the generation scale: the
   * tokens of an image the model is given, whose round trip the evaluation measures.
   */
  async encodeImage(bytes: Uint8Array, scale: number = understandingOf(this.manifest).scale, signal?: AbortSignal): Promise<ImageTokens> {
    return this.#encode(bytes, scale, new RequestClock(), signal);
  }

  /**
   * TA-Tok codes of an image at `scale` and, as its `views`, at each of `viewScales` (the image decoded once): what a
   * store keeps of an upload so that questions about it read what `understand` reads from its bytes (views.ts).
   */
  async encodeImageViews(bytes: Uint8Array, scale: number, viewScales: readonly number[], signal?: AbortSignal): Promise<ImageWithViews> {
    const { image, views } = await this.#imageViews({ bytes }, scale, viewScales, new RequestClock(), signal === undefined ? {} : { signal });
    return { ...image, views };
  }

  understand(request: UnderstandRequest & { image: ImageInput }): Promise<UnderstandResult>;
  understand(request: UnderstandRequest): Promise<UnderstandResult<ImageTokens | undefined>>;
  async understand(request: UnderstandRequest): Promise<UnderstandResult<ImageTokens | undefined>> {
    return this.#understand(request, false);
  }

  /** `understand`; `followUp`: a part of a request under way (a self-check's reading), never refused for a full queue. */
  async #understand(request: UnderstandRequest, followUp: boolean): Promise<UnderstandResult<ImageTokens | undefined>> {
    this.#assertOpen();
    const clock = new RequestClock();
    const m = this.manifest;
    const seed = resolveSeed(request.seed);
    const sampling = resolveSettings('sampling', m.sampling.text, request.sampling);
    checkPrompt(request.prompt);
    const scale = request.scale ?? understandingOf(m).scale;
    const viewScales = resolveViewScales(m, scale, request.viewScales);
    const { image, views } =
      request.image === undefined
        ? { image: undefined, views: [] }
        : await this.#imageViews(request.image, scale, viewScales, clock, request);
    // One prompt row per view of the image, the same question and history in each (views.ts).
    const prompts = [image, ...views].map((view) =>
      this.#prompts.build({ task: 'understand', prompt: request.prompt, ...(view === undefined ? {} : { image: view }) }, request.history),
    );
    const promptIds = prompts[0] as number[];
    const longest = Math.max(...prompts.map((ids) => ids.length));
    this.#checkLength(longest, sampling.maxNewTokens, `maxNewTokens (${sampling.maxNewTokens})`);
    const eos = new Set(m.tokens.eos);
    const pipeline = createPipeline({ settings: sampling, rng: new Rng(seed, RNG_STREAM.llm), context: promptIds });
    const answerIds = await this.#runLlm(
      prompts,
      views.length === 0 ? guidedPick(pipeline, 1) : averagedPick(pipeline),
      (token) => eos.has(token),
      sampling.maxNewTokens,
      clock,
      request,
      followUp,
    );
    return {
      text: this.#bundle.tokenizer.decode(answerIds),
      answerIds,
      imageTokens: image,
      imageViews: views,
      seed,
      timings: clock.finish(),
    };
  }

  async generate(request: GenerateRequest): Promise<ImageResult> {
    this.#assertOpen();
    const clock = new RequestClock();
    const scale = request.scale ?? this.manifest.defaultScale;
    this.#scaleInfo(scale, 'scale');
    checkPrompt(request.prompt);
    return this.#writeImage({ task: 'generate', prompt: request.prompt, scale }, request, clock);
  }

  async edit(request: EditRequest): Promise<ImageResult> {
    this.#assertOpen();
    const clock = new RequestClock();
    // The model copies what an edit keeps token by token, which works within one scale only: an edit of an image given
    // as tokens is written at that image's scale unless the request says otherwise.
    const scale = request.scale ?? ('bytes' in request.image ? editingOf(this.manifest).scale : request.image.scale);
    this.#scaleInfo(scale, 'scale');
    checkPrompt(request.prompt);
    const image = await this.#imageTokens(request.image, request.imageScale ?? scale, clock, request);
    const result = await this.#writeImage({ task: 'edit', prompt: request.prompt, scale, image }, request, clock);
    return { ...result, inputImageTokens: image };
  }

  /** Pixels of stored image tokens: TA-Tok decoder, AR-DTok and VQ decoder (the second half of `generate`). */
  async renderImage(request: RenderRequest): Promise<RenderResult> {
    this.#assertOpen();
    const clock = new RequestClock();
    const seed = resolveSeed(request.seed);
    const image = { tokens: request.tokens, scale: request.scale };
    this.#prompts.checkImageTokens(image, 'image');
    const detok = resolveSettings('detokSampling', this.manifest.sampling.detok, request.detokSampling);
    const { png, vqCodes } = await this.#render(image, detok, new Rng(seed, RNG_STREAM.detok), clock, request);
    const size = this.manifest.vq.outputSize;
    return { png, width: size, height: size, vqCodes, seed, timings: clock.finish() };
  }

  /** Rejects every waiting and running request with ModelDisposedError and releases the graphs. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    await Promise.all([this.#llm.dispose(), this.#arDTok.dispose()]);
    await this.#bundle.dispose();
  }

  async #writeImage(
    prompt: Extract<PromptRequest, { task: 'generate' | 'edit' }>,
    request: GenerateRequest,
    clock: RequestClock,
  ): Promise<ImageResult> {
    const m = this.manifest;
    // Refused before any work when the model cannot check.
    const checker = request.selfCheck === true ? this.#checker() : undefined;
    const seed = resolveSeed(request.seed);
    const sampling = resolveSettings('sampling', m.sampling.image, request.sampling);
    const detok = resolveSettings('detokSampling', m.sampling.detok, request.detokSampling);
    const count = (this.#scaleInfo(prompt.scale, 'scale') as ScaleInfo).tokens;
    const prompts = [this.#prompts.build(prompt, request.history)];
    // Guidance runs the unconditional prompt as a second row of the same job (for an edit: the same input image with
    // the unconditional instruction); both rows take the chosen token.
    const guided = sampling.cfgScale !== 1;
    if (guided) {
      const unconditional = m.templates.unconditionalPrompt ?? '';
      prompts.push(this.#prompts.build({ ...prompt, prompt: unconditional }, request.history));
    }
    const longest = Math.max(...prompts.map((ids) => ids.length));
    this.#checkLength(longest, count, `the ${count} image tokens of scale ${prompt.scale}`);
    const allowed = { start: m.tokens.imageBase, end: m.tokens.imageBase + m.tokens.imageCount };
    /** Image tokens from a sampling pipeline; `progress` carries the request's signal and, for the first, its events. */
    const write = async (pipe: ReturnType<typeof createPipeline>, progress: CommonRequest, followUp = false) =>
      (await this.#runLlm(prompts, guidedPick(pipe, sampling.cfgScale), () => false, count, clock, progress, followUp)).map(
        (id) => id - m.tokens.imageBase,
      );
    let tokens = await write(createPipeline({ settings: sampling, rng: new Rng(seed, RNG_STREAM.llm), allowed }), request);
    let report: SelfCheckReport | undefined;
    if (checker !== undefined) {
      // Candidates send no progress (the request's decode progress has reached its end once) and are read greedily.
      const quiet = request.signal === undefined ? {} : { signal: request.signal };
      const steps: SelfCheckSteps = {
        write: (k, temperature) => {
          const rng = new Rng(seed, RNG_STREAM.candidate + k);
          return write(createPipeline({ settings: { ...sampling, temperature }, rng, allowed }), quiet, true);
        },
        read: async (image) => {
          const greedy = { temperature: 0 };
          return (await this.#understand({ image, prompt: checker.check.question, seed, sampling: greedy, viewScales: [], ...quiet }, true)).text;
        },
      };
      const asked =
        prompt.task === 'edit'
          ? { task: prompt.task, prompt: prompt.prompt, inputImage: prompt.image }
          : { task: prompt.task, prompt: prompt.prompt };
      ({ tokens, report } = await selfCheck(checker.check, checker.judge, asked, { tokens, scale: prompt.scale }, steps));
    }
    const image = { tokens, scale: prompt.scale };
    const { png, vqCodes } = await this.#render(image, detok, new Rng(seed, RNG_STREAM.detok), clock, request);
    const size = m.vq.outputSize;
    return {
      image: { png, width: size, height: size, tokens, scale: prompt.scale, vqCodes },
      ...(report === undefined ? {} : { selfCheck: report }),
      seed,
      timings: clock.finish(),
    };
  }

  /** The bundle's self-check and its judge; InvalidRequestError when the model cannot check (ModelInfo.selfCheck). */
  #checker(): { check: SelfCheck; judge: ImageJudge } {
    const check = this.manifest.selfCheck;
    if (check === undefined) throw new InvalidRequestError('selfCheck: this model has no self-check (its manifest has no selfCheck)');
    if (this.#judge === undefined) throw new InvalidRequestError(`selfCheck: this model was not given its judge "${check.judge}"`);
    return { check, judge: this.#judge };
  }

  /** Decodes one answer from one or more prompt rows (one per guidance branch); `pick` chooses every row's next token. */
  async #runLlm(
    prompts: number[][],
    pick: (logits: Float32Array[]) => number,
    endsBefore: (token: number) => boolean,
    limit: number,
    clock: RequestClock,
    request: CommonRequest,
    followUp = false,
  ): Promise<number[]> {
    const progress = request.onProgress;
    const rule = this.#positions;
    const job = new SequenceJob(
      prompts.map((ids) => (rule === undefined ? { inputIds: ids } : { inputIds: ids, positions: rule(ids) })),
      request.signal,
      pick,
      endsBefore,
      limit,
      (n) => progress?.({ stage: 'decode', done: n, total: limit }),
      () => progress?.({ stage: 'prefill', done: 0, total: 1 }),
      () => progress?.({ stage: 'prefill', done: 1, total: 1 }),
    );
    job.followUp = followUp;
    // The fed token is the last one the job kept, so its position is the rule's last over the row's prompt + answer.
    if (rule !== undefined) job.nextPosition = (row) => rule([...(prompts[row] as number[]), ...job.tokens]).at(-1) as number;
    await this.#llm.run(job);
    clock.t.queued += job.admittedAt - job.submittedAt;
    clock.t.prefill += job.prefilledAt - job.admittedAt;
    clock.t.decode += job.finishedAt - job.prefilledAt;
    clock.t.decodeTokens += job.tokens.length;
    clock.t.ort += job.ortMs;
    return job.tokens;
  }

  /** TA-Tok decoder → AR-DTok (CFG) → VQ decoder → PNG. */
  async #render(
    image: ImageTokens,
    settings: DetokSampling,
    rng: Rng,
    clock: RequestClock,
    request: { signal?: AbortSignal | undefined; onProgress?: ((event: ProgressEvent) => void) | undefined },
  ): Promise<{ png: Buffer; vqCodes: number[] }> {
    const m = this.manifest;
    const progress = request.onProgress;
    const detokStart = performance.now();
    checkAborted(request.signal);
    const total = m.arDTok.codes;
    progress?.({ stage: 'detokenize', done: 0, total });
    const featuresRun = await this.#bundle.graphs.taTokDecoder.run({
      ids: int64Tensor(image.tokens, [1, image.tokens.length]),
    });
    clock.t.ort += featuresRun.ms;
    const features = featuresRun.outputs.features;
    if (features === undefined) throw new InferenceError('taTokDecoder returned no "features"');
    const cond = Float32Array.from(readFloat32(features));
    const expected = image.tokens.length * m.arDTok.condDim;
    if (cond.length !== expected) {
      throw new InferenceError(`taTokDecoder features have ${cond.length} values, expected ${expected}`);
    }
    const guided = settings.cfgScale !== 1;
    const rows: RowPrefill[] = [{ inputIds: [], cond }];
    // The unconditional branch is the same sequence with an all-zero condition; both rows take the same code.
    if (guided) rows.push({ inputIds: [], cond: new Float32Array(cond.length) });
    const pipeline = createPipeline({ settings, rng });
    const job = new SequenceJob(
      rows,
      request.signal,
      guidedPick(pipeline, settings.cfgScale),
      () => false,
      total,
      (n) => progress?.({ stage: 'detokenize', done: n, total }),
      () => undefined,
      () => undefined,
    );
    const dtokQueued = performance.now();
    await this.#arDTok.run(job);
    clock.t.queued += job.admittedAt - dtokQueued;
    clock.t.ort += job.ortMs;
    clock.t.detokenize += performance.now() - detokStart - (job.admittedAt - dtokQueued);

    checkAborted(request.signal);
    const vqStart = performance.now();
    progress?.({ stage: 'vq-decode', done: 0, total: 1 });
    const grid = m.vq.grid;
    const vq = await this.#bundle.graphs.vqDecoder.run({ codes: int64Tensor(job.tokens, [1, grid * grid]) });
    clock.t.ort += vq.ms;
    const pixels = vq.outputs.pixels;
    if (pixels === undefined) throw new InferenceError('vqDecoder returned no "pixels"');
    const png = await pixelsToPng(readFloat32(pixels), m.vq.outputSize);
    progress?.({ stage: 'vq-decode', done: 1, total: 1 });
    clock.t.vqDecode += performance.now() - vqStart;
    return { png, vqCodes: job.tokens };
  }

  async #imageTokens(
    input: ImageInput,
    scale: number,
    clock: RequestClock,
    request: CommonRequest,
  ): Promise<ImageTokens> {
    return (await this.#imageViews(input, scale, [], clock, request)).image;
  }

  /**
   * The image's tokens and its other views: bytes encoded at `scale` and at each of `viewScales` (decoded once);
   * tokens as given, with the views they carry.
   */
  async #imageViews(
    input: ImageInput,
    scale: number,
    viewScales: readonly number[],
    clock: RequestClock,
    request: CommonRequest,
  ): Promise<{ image: ImageTokens; views: ImageTokens[] }> {
    if ('bytes' in input) {
      for (const s of [scale, ...viewScales]) this.#scaleInfo(s, 'scale');
      const total = 1 + viewScales.length;
      request.onProgress?.({ stage: 'encode', done: 0, total });
      const pixels = await this.#pixels(input.bytes, clock, request.signal);
      const encoded: ImageTokens[] = [];
      for (const s of [scale, ...viewScales]) {
        encoded.push(await this.#encodePixels(pixels, s, clock, request.signal));
        request.onProgress?.({ stage: 'encode', done: encoded.length, total });
      }
      return { image: encoded[0] as ImageTokens, views: encoded.slice(1) };
    }
    const image = { tokens: input.tokens, scale: input.scale };
    this.#prompts.checkImageTokens(image, 'image');
    const views = (input.views ?? []).map((view, i) => {
      const tokens = { tokens: view.tokens, scale: view.scale };
      this.#prompts.checkImageTokens(tokens, `image.views[${i}]`);
      return tokens;
    });
    return { image, views };
  }

  async #encode(bytes: Uint8Array, scale: number, clock: RequestClock, signal?: AbortSignal): Promise<ImageTokens> {
    this.#scaleInfo(scale, 'scale');
    return this.#encodePixels(await this.#pixels(bytes, clock, signal), scale, clock, signal);
  }

  /** Decoded, resized and normalised pixels of image bytes (the TA-Tok encoder's input). */
  async #pixels(bytes: Uint8Array, clock: RequestClock, signal?: AbortSignal): Promise<Float32Array> {
    this.#assertOpen();
    checkAborted(signal);
    const start = performance.now();
    const pixels = await imageToPixels(bytes, this.manifest.image);
    clock.t.encode += performance.now() - start;
    return pixels;
  }

  async #encodePixels(pixels: Float32Array, scale: number, clock: RequestClock, signal?: AbortSignal): Promise<ImageTokens> {
    this.#assertOpen();
    const info = this.#scaleInfo(scale, 'scale');
    checkAborted(signal);
    const start = performance.now();
    const m = this.manifest;
    const size = m.image.inputSize;
    const run = await this.#bundle.graphs.taTokEncoder.run({
      pixels: floatTensor(graphDtype('taTokEncoder', m), pixels, [1, 3, size, size]),
      scale: int64Tensor([scale], [1]),
    });
    clock.t.ort += run.ms;
    const ids = run.outputs.ids;
    if (ids === undefined) throw new InferenceError('taTokEncoder returned no "ids"');
    const tokens = readInt64(ids);
    if (tokens.length !== info.tokens || tokens.some((t) => t < 0 || t >= m.tokens.imageCount)) {
      throw new InferenceError(
        `taTokEncoder returned ${tokens.length} ids at scale ${scale}, expected ${info.tokens} ids in [0, ${m.tokens.imageCount})`,
      );
    }
    clock.t.encode += performance.now() - start;
    return { tokens, scale };
  }

  #scaleInfo(scale: number, what: string): ScaleInfo {
    const info = findScale(this.manifest, scale);
    if (info === undefined) {
      throw new InvalidRequestError(
        `${what} must be one of ${this.manifest.scales.map((s) => s.scale).join(', ')}, not ${scale}`,
      );
    }
    return info;
  }

  #checkLength(promptTokens: number, budget: number, what: string): void {
    const max = this.manifest.llm.maxPositions;
    if (promptTokens + budget > max) {
      throw new PromptTooLongError(
        `the prompt is ${promptTokens} tokens; with ${what} it needs ${promptTokens + budget} positions, more than llm.maxPositions (${max})`,
        promptTokens,
        max,
      );
    }
  }

  #assertOpen(): void {
    if (this.#disposed) throw new ModelDisposedError();
  }
}

function checkPrompt(prompt: unknown): void {
  if (typeof prompt !== 'string') throw new InvalidRequestError('prompt must be a string');
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CancelledError('the request was cancelled', { cause: signal.reason });
}

/** Bundles whose graphs weigh less than this are "small": one intra-op thread, and served in the caller's thread. */
const SMALL_BUNDLE_BYTES = 128 * 1024 * 1024;

/**
 * Whether a bundle is small and runs on the CPU: its graphs weigh less than 128 MB (tar-shapes: 29 MB; the released
 * checkpoints: gigabytes). Undefined when the folder cannot be read (loadBundle reports that).
 */
export async function isSmallCpuBundle(bundleDir: string, provider: ExecutionProvider | undefined): Promise<boolean | undefined> {
  if ((provider ?? 'cpu') !== 'cpu') return false;
  try {
    let bytes = 0;
    for (const name of await readdir(bundleDir)) {
      if (name.endsWith('.onnx') || name.endsWith('.onnx.data')) bytes += (await stat(join(bundleDir, name))).size;
    }
    return bytes < SMALL_BUNDLE_BYTES;
  } catch {
    return undefined;
  }
}

/**
 * The default intra-op thread count. A small model's matrices are too small to split: on the 2-core machines
 * measured (docs/performance.md, "Threads"), tar-shapes generates in 107 ms p50 with one thread against 268 ms
 * with two, and answers more requests at 16 in flight (18.3 against 13.1 a second). Large bundles (the released
 * checkpoints) and other providers keep onnxruntime's choice.
 */
async function defaultIntraOpThreads(bundleDir: string, provider: ExecutionProvider | undefined): Promise<number | undefined> {
  return (await isSmallCpuBundle(bundleDir, provider)) === true ? 1 : undefined;
}
