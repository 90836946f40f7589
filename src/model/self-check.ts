/**
 * Self-check: a unified model can read the image tokens it has just written, so it can check a generation or an
 * edit before it is shown (docs/model-card.md, "The shipped bundle (1.4.2)"). The model reads its first image
 * with the bundle's question; a judge — a function that knows the model's language, given to the runtime by name
 * (TarModelOptions.judgeModule), so the runtime itself knows no world — says whether that reading meets the request.
 * When it does not, the model writes more candidates by sampling and keeps the first one the judge passes, else its
 * first image. Only the chosen image is rendered, so a check costs LLM work only. The candidates' decoding counts in
 * the request's stage timings (prefill, decode); the readings, which are understanding requests of their own, do not.
 */
import { BundleError } from './errors.ts';
import type { ImageTokens } from './prompt.ts';
import type { SelfCheck } from './manifest.ts';

/** What a judge is asked about: the request, and for an edit the model's reading of the input image. */
export interface JudgeRequest {
  task: 'generate' | 'edit';
  prompt: string;
  /** Edit: how the model read the input image (same question). */
  input?: string;
}

/** Whether the model's reading of a written image meets the request. */
export type ImageJudge = (request: JudgeRequest, reading: string) => boolean;

/** What a module named by TarModelOptions.judgeModule exports. */
export interface JudgeModule {
  judges: Record<string, ImageJudge>;
}

/**
 * The judges a judge module exports. A module that cannot be imported, or whose `judges` is not an object of
 * functions, is refused with BundleError: the model could not serve its manifest's `selfCheck` as configured, and
 * loading fails at once rather than with a TypeError at the first checked request.
 */
export async function loadJudges(url: string): Promise<Record<string, ImageJudge>> {
  let module: Partial<JudgeModule>;
  try {
    module = (await import(url)) as Partial<JudgeModule>;
  } catch (error) {
    throw new BundleError(`judge module ${url} cannot be imported: ${(error as Error).message}`, { cause: error });
  }
  const judges: unknown = module.judges;
  if (typeof judges !== 'object' || judges === null) {
    throw new BundleError(`judge module ${url} exports no "judges" object (name → judge function)`);
  }
  for (const [name, judge] of Object.entries(judges)) {
    if (typeof judge !== 'function') throw new BundleError(`judge module ${url}: judges.${name} is not a function`);
  }
  return judges as Record<string, ImageJudge>;
}

/** How a self-checked request went; absent when the request was not checked. */
export interface SelfCheckReport {
  /** Images written: 1 when the first passed. */
  written: number;
  /** Index of the image kept (0: the first). */
  chosen: number;
  /** Whether the kept image passed the judge (false: none did, the first is kept). */
  passed: boolean;
}

export interface SelfCheckSteps {
  /** The model's reading of image tokens (`question`, greedy). */
  read: (image: ImageTokens) => Promise<string>;
  /** Candidate k's tokens (k ≥ 1), written by sampling at `temperature` with its own random stream. */
  write: (k: number, temperature: number) => Promise<number[]>;
}

/** The tokens to keep of `first` (written by the request's own sampling) and the candidates a failed check writes. */
export async function selfCheck(
  check: SelfCheck,
  judge: ImageJudge,
  request: JudgeRequest & { inputImage?: ImageTokens },
  first: ImageTokens,
  steps: SelfCheckSteps,
): Promise<{ tokens: number[]; report: SelfCheckReport }> {
  const { inputImage, ...asked } = request;
  // An edit's input and its first image are read together (one batched decode, not two in a row).
  const [input, firstReading] = await Promise.all([inputImage === undefined ? undefined : steps.read(inputImage), steps.read(first)]);
  const judged: JudgeRequest = input === undefined ? asked : { ...asked, input };
  if (judge(judged, firstReading)) return { tokens: first.tokens, report: { written: 1, chosen: 0, passed: true } };
  // The candidates decode together (the runtime batches concurrent jobs), then are read together.
  const candidates = await Promise.all(Array.from({ length: check.candidates }, (_, i) => steps.write(i + 1, check.temperature)));
  const readings = await Promise.all(candidates.map((tokens) => steps.read({ tokens, scale: first.scale })));
  const passing = readings.findIndex((reading) => judge(judged, reading));
  const written = 1 + candidates.length;
  if (passing < 0) return { tokens: first.tokens, report: { written, chosen: 0, passed: false } };
  return { tokens: candidates[passing] as number[], report: { written, chosen: passing + 1, passed: true } };
}
