/**
 * A TarModel in a worker thread of its own, with TarModel's interface (the {@link Model} type).
 *
 * onnxruntime-node runs each graph synchronously on the calling thread (inside a `setImmediate`), so an in-thread
 * model makes every inference step block the event loop: a server's HTTP parsing, SQL (PGlite runs on the event
 * loop too), responses and health checks wait for it, and its own work waits for them. In a thread of its own the
 * model uses one core while the caller's work runs on another: docs/performance.md, "Where the overhead goes, and
 * the model thread" (measured there: slower for the small shipped model on two cores, hence DIALECT_MODEL_THREAD=auto).
 *
 * Each call is a message with an id; the thread answers with the result or the error (rebuilt as the same runtime
 * error class: protocol.ts), and with progress events when the caller passed `onProgress`. Aborting the caller's
 * signal aborts the request in the thread, where it leaves its batch at the next step as in-thread. If the thread
 * dies, every pending and later request fails with InferenceError instead of waiting for ever.
 */
import type { Worker } from 'node:worker_threads';
import { startTsWorker } from '../../lib/ts-worker.ts';
import { CancelledError, InferenceError, InvalidRequestError, ModelDisposedError, type ModelError } from '../errors.ts';
import type { Manifest } from '../manifest.ts';
import type { ImageTokens } from '../prompt.ts';
import type {
  EditRequest,
  GenerateRequest,
  ImageInput,
  ImageWithViews,
  ImageResult,
  ModelInfo,
  ModelMetrics,
  ProgressEvent,
  RenderRequest,
  RenderResult,
  TarModel,
  TarModelOptions,
  UnderstandRequest,
  UnderstandResult,
} from '../tar-model.ts';
import { type FromThread, fromWireError, type Method, type ThreadInput, type ToThread } from './protocol.ts';

/** What callers use of a model, whether it runs in their thread (TarModel) or in its own (ThreadedTarModel). */
export type Model = Pick<TarModel, 'manifest' | 'info' | 'metrics' | 'encodeImage' | 'encodeImageViews' | 'understand' | 'generate' | 'edit' | 'renderImage' | 'dispose'>;

const WORKER_ENTRY = new URL('./worker.ts', import.meta.url);

interface Call {
  resolve(value: unknown): void;
  reject(error: unknown): void;
  onProgress: ((event: ProgressEvent) => void) | undefined;
  /** Stops listening to the caller's signal. */
  release(): void;
}

/** A PNG crosses threads as a Uint8Array; the runtime's results promise a Buffer. */
const asBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

export class ThreadedTarModel implements Model {
  readonly manifest: Manifest;
  readonly #info: ModelInfo;
  #metrics: ModelMetrics;
  readonly #worker: Worker;
  readonly #calls = new Map<number, Call>();
  #nextId = 1;
  /** Set once the thread is disposed or gone: every later request fails with it. */
  #stopped: ModelError | undefined;
  #disposing: Promise<void> | undefined;

  private constructor(worker: Worker, ready: Extract<FromThread, { kind: 'ready' }>) {
    this.#worker = worker;
    this.manifest = ready.manifest;
    this.#info = ready.info;
    this.#metrics = ready.metrics;
    this.#listen();
  }

  /** Starts the thread and opens the bundle in it (TarModel.load's options and errors; judges by `judgeModule`, as
   * functions do not cross to the thread). */
  static async load(options: Omit<TarModelOptions, 'judges'>): Promise<ThreadedTarModel> {
    const { onLoadProgress, ...input } = options;
    const worker = startTsWorker<ThreadInput>(WORKER_ENTRY, input);
    let ready: Extract<FromThread, { kind: 'ready' }>;
    try {
      ready = await new Promise((resolve, reject) => {
        const onExit = (code: number) => reject(new InferenceError(`the model thread exited (code ${code}) while loading`));
        const onError = (error: Error) => reject(new InferenceError(`the model thread failed while loading: ${error.message}`, { cause: error }));
        const onMessage = (message: FromThread) => {
          if (message.kind === 'load-progress') {
            onLoadProgress?.(message.event);
            return;
          }
          worker.off('exit', onExit).off('error', onError).off('message', onMessage);
          if (message.kind === 'ready') resolve(message);
          else if (message.kind === 'load-failed') reject(fromWireError(message.error));
          else reject(new InferenceError(`the model thread answered ${message.kind} before it was ready`));
        };
        worker.on('exit', onExit).on('error', onError).on('message', onMessage);
      });
    } catch (error) {
      await worker.terminate();
      throw error;
    }
    return new ThreadedTarModel(worker, ready);
  }

  info(): ModelInfo {
    return structuredClone(this.#info);
  }

  /** Batch counters of both decoders, as of the thread's latest answer or stage start. */
  metrics(): ModelMetrics {
    return structuredClone(this.#metrics);
  }

  /** Absent a scale, the thread's TarModel chooses it (its reading scale): one place says what the default is. */
  encodeImage(bytes: Uint8Array, scale?: number, signal?: AbortSignal): Promise<ImageTokens> {
    return this.#call('encodeImage', { bytes, scale }, signal, undefined) as Promise<ImageTokens>;
  }

  encodeImageViews(bytes: Uint8Array, scale: number, viewScales: readonly number[], signal?: AbortSignal): Promise<ImageWithViews> {
    return this.#call('encodeImageViews', { bytes, scale, viewScales: [...viewScales] }, signal, undefined) as Promise<ImageWithViews>;
  }

  understand(request: UnderstandRequest & { image: ImageInput }): Promise<UnderstandResult>;
  understand(request: UnderstandRequest): Promise<UnderstandResult<ImageTokens | undefined>>;
  understand(request: UnderstandRequest): Promise<UnderstandResult<ImageTokens | undefined>> {
    return this.#request('understand', request) as Promise<UnderstandResult<ImageTokens | undefined>>;
  }

  async generate(request: GenerateRequest): Promise<ImageResult> {
    return reviveImageResult((await this.#request('generate', request)) as ImageResult);
  }

  async edit(request: EditRequest): Promise<ImageResult> {
    return reviveImageResult((await this.#request('edit', request)) as ImageResult);
  }

  async renderImage(request: RenderRequest): Promise<RenderResult> {
    const result = (await this.#request('renderImage', request)) as RenderResult;
    return { ...result, png: asBuffer(result.png) };
  }

  /** Rejects every waiting and running request with ModelDisposedError, releases the graphs and ends the thread. */
  dispose(): Promise<void> {
    this.#disposing ??= (async () => {
      const alive = this.#stopped === undefined;
      this.#stopped ??= new ModelDisposedError();
      if (alive) {
        this.#worker.ref();
        await new Promise<void>((resolve) => {
          const done = () => resolve();
          this.#worker.once('exit', done);
          this.#worker.on('message', (message: FromThread) => {
            if (message.kind === 'disposed') done();
          });
          this.#post({ kind: 'dispose' });
        });
      }
      await this.#worker.terminate();
    })();
    return this.#disposing;
  }

  #request(method: Method, request: { signal?: AbortSignal | undefined; onProgress?: ((event: ProgressEvent) => void) | undefined }): Promise<unknown> {
    const { signal, onProgress, ...rest } = request;
    return this.#call(method, rest, signal, onProgress);
  }

  #call(
    method: Method,
    request: Record<string, unknown>,
    signal: AbortSignal | undefined,
    onProgress: ((event: ProgressEvent) => void) | undefined,
  ): Promise<unknown> {
    if (this.#stopped !== undefined) return Promise.reject(this.#stopped);
    if (signal?.aborted) return Promise.reject(new CancelledError('the request was cancelled', { cause: signal.reason }));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const onAbort = () => this.#post({ kind: 'abort', id });
      signal?.addEventListener('abort', onAbort, { once: true });
      if (this.#calls.size === 0) this.#worker.ref();
      this.#calls.set(id, { resolve, reject, onProgress, release: () => signal?.removeEventListener('abort', onAbort) });
      try {
        this.#worker.postMessage({ kind: 'call', id, method, request, progress: onProgress !== undefined } satisfies ToThread);
      } catch (error) {
        // A request field that cannot be cloned (a function, a class instance with private state): this call only.
        this.#settle(id)?.reject(new InvalidRequestError(`the request cannot be passed to the model thread: ${(error as Error).message}`));
      }
    });
  }

  #post(message: ToThread): void {
    try {
      this.#worker.postMessage(message);
    } catch {
      // The thread is gone; its exit handler fails what is pending.
    }
  }

  #listen(): void {
    const worker = this.#worker;
    worker.on('message', (message: FromThread) => {
      if (message.kind === 'progress') {
        if (message.metrics !== undefined) this.#metrics = message.metrics;
        this.#calls.get(message.id)?.onProgress?.(message.event);
      } else if (message.kind === 'result' || message.kind === 'error') {
        this.#metrics = message.metrics;
        const call = this.#settle(message.id);
        if (message.kind === 'result') call?.resolve(message.value);
        else call?.reject(fromWireError(message.error));
      }
    });
    worker.on('error', (error) => this.#die(new InferenceError(`the model thread failed: ${error.message}`, { cause: error })));
    worker.on('messageerror', (error) => {
      // An answer that could not be read: which request it belonged to is lost, so none can be trusted to finish.
      this.#die(new InferenceError(`an answer of the model thread could not be read: ${error.message}`, { cause: error }));
      void worker.terminate();
    });
    worker.on('exit', (code) => this.#die(this.#disposing !== undefined ? new ModelDisposedError() : new InferenceError(`the model thread exited (code ${code})`)));
    // Idle, the thread does not keep the process alive (an in-thread model holds no handle either); a pending call
    // does, so that awaiting a request never lets the process end under it.
    worker.unref();
  }

  #settle(id: number): Call | undefined {
    const call = this.#calls.get(id);
    if (call === undefined) return undefined;
    this.#calls.delete(id);
    call.release();
    if (this.#calls.size === 0 && this.#disposing === undefined) this.#worker.unref();
    return call;
  }

  #die(error: ModelError): void {
    this.#stopped ??= error;
    for (const id of [...this.#calls.keys()]) this.#settle(id)?.reject(error);
  }

  /**
   * Ends the thread at once, as a crash would: every pending and later request fails with INFERENCE_FAILED. For
   * tests of that failure.
   */
  async terminate(): Promise<void> {
    await this.#worker.terminate();
  }
}

function reviveImageResult(result: ImageResult): ImageResult {
  return { ...result, image: { ...result.image, png: asBuffer(result.image.png) } };
}
