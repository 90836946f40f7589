/**
 * Every error the model runtime throws on purpose extends {@link ModelError} and carries a stable `code`, so that
 * callers (the CLI, the server) can map it to an answer without parsing messages. Messages are for people: they say
 * what is wrong and where.
 */

/** The stable codes of the runtime's errors. New codes may be added; existing ones never change meaning. */
export type ModelErrorCode =
  | 'BUNDLE_INVALID'
  | 'PROVIDER_UNAVAILABLE'
  | 'INVALID_IMAGE'
  | 'IMAGE_TOO_LARGE'
  | 'PROMPT_TOO_LONG'
  | 'INVALID_REQUEST'
  | 'QUEUE_FULL'
  | 'CANCELLED'
  | 'MODEL_DISPOSED'
  | 'INFERENCE_FAILED';

export class ModelError extends Error {
  readonly code: ModelErrorCode;

  constructor(code: ModelErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A bundle folder that cannot be served: a missing file, a bad manifest field, a graph port that breaks the contract. */
export class BundleError extends ModelError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BUNDLE_INVALID', message, options);
  }
}

/** The requested execution provider is not in this onnxruntime-node build, or failed to start. */
export class ProviderUnavailableError extends ModelError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PROVIDER_UNAVAILABLE', message, options);
  }
}

/** Bytes that are not a single still PNG, JPEG or WebP image. */
export class InvalidImageError extends ModelError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_IMAGE', message, options);
  }
}

/** An image whose header announces more pixels than `image.maxInputPixels`; refused before decoding. */
export class ImageTooLargeError extends ModelError {
  constructor(
    message: string,
    readonly pixels: number,
    readonly maxPixels: number,
  ) {
    super('IMAGE_TOO_LARGE', message);
  }
}

/** The prompt plus the answer budget does not fit the model's context (`llm.maxPositions`). */
export class PromptTooLongError extends ModelError {
  constructor(
    message: string,
    readonly promptTokens: number,
    readonly maxPositions: number,
  ) {
    super('PROMPT_TOO_LONG', message);
  }
}

/** A request argument out of range (a scale the bundle lacks, a negative temperature, a bad seed...). */
export class InvalidRequestError extends ModelError {
  constructor(message: string) {
    super('INVALID_REQUEST', message);
  }
}

/** The waiting queue of a batcher is full; the caller may retry later. */
export class QueueFullError extends ModelError {
  constructor(message: string) {
    super('QUEUE_FULL', message);
  }
}

/** The request's AbortSignal fired; the request was removed from its batch at a step boundary. */
export class CancelledError extends ModelError {
  constructor(message = 'the request was cancelled', options?: { cause?: unknown }) {
    super('CANCELLED', message, options);
  }
}

/** The model was disposed while the request waited or ran, or before it was made. */
export class ModelDisposedError extends ModelError {
  constructor(message = 'the model has been disposed') {
    super('MODEL_DISPOSED', message);
  }
}

/** onnxruntime failed while running a graph; `cause` holds its error. */
export class InferenceError extends ModelError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('INFERENCE_FAILED', message, options);
  }
}
