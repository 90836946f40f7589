/** The public API of the model runtime. Everything else under src/model is internal. */
export {
  TarModel,
  type TarModelOptions,
  type ImageInput,
  type ImageWithViews,
  type ProgressStage,
  type ProgressEvent,
  type Timings,
  type UnderstandRequest,
  type UnderstandResult,
  type GenerateRequest,
  type EditRequest,
  type GeneratedImage,
  type ImageResult,
  type RenderRequest,
  type RenderResult,
  type ModelInfo,
  type ModelMetrics,
  isSmallCpuBundle,
} from './tar-model.ts';
export { ThreadedTarModel, type Model } from './thread/threaded-model.ts';
export type { ImageTokens, Turn, Task } from './prompt.ts';
export type { TextSampling, ImageSampling, DetokSampling, SamplingSettings } from './sampling.ts';
export type { Manifest, ScaleInfo } from './manifest.ts';
export { editingOf, parseManifest, understandingOf } from './manifest.ts';
export { storedViewScales } from './views.ts';
export type { ImageJudge, JudgeModule, JudgeRequest, SelfCheckReport } from './self-check.ts';
export type { LoadProgress } from './bundle.ts';
export type { ExecutionProvider } from './onnx-backend.ts';
export type { BatcherStats } from './decoder.ts';
export {
  ModelError,
  type ModelErrorCode,
  BundleError,
  ProviderUnavailableError,
  InvalidImageError,
  ImageTooLargeError,
  PromptTooLongError,
  InvalidRequestError,
  QueueFullError,
  CancelledError,
  ModelDisposedError,
  InferenceError,
} from './errors.ts';
export { upscaleNearest } from './images.ts';
export { MAX_SEED } from './random.ts';
