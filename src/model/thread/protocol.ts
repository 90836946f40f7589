/**
 * Messages between ThreadedTarModel (the caller's thread) and the model thread (worker.ts), and how the runtime's
 * typed errors cross between them: a thrown ModelError arrives as the same class with the same code, message and
 * fields, so callers cannot tell a threaded model's errors from an in-thread one's.
 */
import type { LoadProgress } from '../bundle.ts';
import {
  BundleError,
  CancelledError,
  ImageTooLargeError,
  InferenceError,
  InvalidImageError,
  InvalidRequestError,
  ModelDisposedError,
  ModelError,
  PromptTooLongError,
  ProviderUnavailableError,
  QueueFullError,
} from '../errors.ts';
import type { Manifest } from '../manifest.ts';
import type { ModelInfo, ModelMetrics, ProgressEvent, TarModelOptions } from '../tar-model.ts';

/** The model's methods that run in the thread. */
export type Method = 'understand' | 'generate' | 'edit' | 'renderImage' | 'encodeImage' | 'encodeImageViews';

/** What the thread is started with: TarModel.load's options, less the callback (load progress comes as messages). */
export type ThreadInput = Omit<TarModelOptions, 'onLoadProgress' | 'judges'>;

export type ToThread =
  /** A request without its `signal` and `onProgress` (functions do not cross); `progress` asks for progress messages. */
  | { kind: 'call'; id: number; method: Method; request: Record<string, unknown>; progress: boolean }
  | { kind: 'abort'; id: number }
  | { kind: 'dispose' };

export type FromThread =
  | { kind: 'load-progress'; event: LoadProgress }
  | { kind: 'ready'; manifest: Manifest; info: ModelInfo; metrics: ModelMetrics }
  | { kind: 'load-failed'; error: WireError }
  /** `metrics` comes with the first event of a stage (done 0), not with every token. */
  | { kind: 'progress'; id: number; event: ProgressEvent; metrics?: ModelMetrics }
  | { kind: 'result'; id: number; value: unknown; metrics: ModelMetrics }
  | { kind: 'error'; id: number; error: WireError; metrics: ModelMetrics }
  | { kind: 'disposed' };

/** An error as it crosses: its class name, message, and the numeric fields some classes carry. */
export interface WireError {
  name: string;
  message: string;
  code?: string;
  fields?: Record<string, number>;
  cause?: string;
}

export function toWireError(error: unknown): WireError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const wire: WireError = { name: error.name, message: error.message };
  if (error instanceof ModelError) wire.code = error.code;
  if (error instanceof PromptTooLongError) wire.fields = { promptTokens: error.promptTokens, maxPositions: error.maxPositions };
  if (error instanceof ImageTooLargeError) wire.fields = { pixels: error.pixels, maxPixels: error.maxPixels };
  if (error.cause instanceof Error) wire.cause = error.cause.message;
  return wire;
}

const field = (wire: WireError, name: string) => wire.fields?.[name] ?? Number.NaN;

/** The runtime's error classes by name, rebuilt from their wire form. */
const REVIVE: Record<string, (wire: WireError, options: { cause?: unknown }) => ModelError> = {
  BundleError: (w, o) => new BundleError(w.message, o),
  ProviderUnavailableError: (w, o) => new ProviderUnavailableError(w.message, o),
  InvalidImageError: (w, o) => new InvalidImageError(w.message, o),
  ImageTooLargeError: (w) => new ImageTooLargeError(w.message, field(w, 'pixels'), field(w, 'maxPixels')),
  PromptTooLongError: (w) => new PromptTooLongError(w.message, field(w, 'promptTokens'), field(w, 'maxPositions')),
  InvalidRequestError: (w) => new InvalidRequestError(w.message),
  QueueFullError: (w) => new QueueFullError(w.message),
  CancelledError: (w, o) => new CancelledError(w.message, o),
  ModelDisposedError: (w) => new ModelDisposedError(w.message),
  InferenceError: (w, o) => new InferenceError(w.message, o),
};

/**
 * The error a wire form stands for. A runtime error comes back as its own class; anything else (a bug in the
 * thread) as a plain Error with the same name and message, as it would have been thrown in-thread.
 */
export function fromWireError(wire: WireError): Error {
  const options = wire.cause === undefined ? {} : { cause: new Error(wire.cause) };
  const revive = REVIVE[wire.name];
  if (revive !== undefined) return revive(wire, options);
  if (wire.code !== undefined) return new ModelError(wire.code as ModelError['code'], wire.message, options);
  const error = new Error(wire.message, options);
  error.name = wire.name;
  return error;
}
