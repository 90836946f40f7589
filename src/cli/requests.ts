import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { ProgressEvent, TarModel } from '../model/index.ts';
import { UsageError } from './usage-error.ts';

/** Sampling choices a request may make; unset ones take the model's defaults. */
export interface CliSampling {
  /** Of the LLM's tokens (text or image); 0 is greedy. */
  temperature?: number;
  /** Classifier-free guidance of a generated or edited image by the request's text; 1 is off. */
  guidance?: number;
  /** Classifier-free guidance of the de-tokenizer's VQ codes by the image tokens (`sampling.detok.cfgScale`); 1 is
   * off. A tuning knob: the bundle's default is chosen on a tuning set (`npm run bench:detok`). */
  detokGuidance?: number;
  /** The model checks the image it writes by reading it, and writes more when the check fails (generate, edit). */
  selfCheck?: boolean;
}

/** One unit of work for the CLI, from flags or from a line of a batch file. Paths are relative to `baseDir`. */
export type CliRequest =
  | ({ task: 'understand'; image: string; prompt: string; seed?: number; scale?: number; views?: number[] } & Pick<
      CliSampling,
      'temperature'
    >)
  | ({ task: 'generate'; prompt: string; out: string; seed?: number; scale?: number } & CliSampling)
  | ({ task: 'edit'; image: string; prompt: string; out: string; seed?: number; scale?: number; imageScale?: number } &
      CliSampling)
  | ({ task: 'reconstruct'; image: string; out: string; seed?: number; scale?: number } & Pick<CliSampling, 'detokGuidance'>);

/** The tasks a request can name. */
export const TASKS = ['understand', 'generate', 'edit', 'reconstruct'] as const satisfies readonly CliRequest['task'][];

export interface CliResult {
  text?: string;
  /** The path the image was written to, as the request gave it. */
  image?: string;
  tokens?: number[];
  seed: number;
}

export const MAX_TEMPERATURE = 10;
export const MAX_GUIDANCE = 50;

/** Checks a parsed JSON value (a batch line) and says which field is wrong. */
export function parseRequest(value: unknown): CliRequest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError('a request must be a JSON object');
  }
  const record = value as Record<string, unknown>;
  const text = (field: string): string => {
    const v = record[field];
    if (typeof v !== 'string' || v.length === 0) throw new UsageError(`"${field}" must be a non-empty string`);
    return v;
  };
  const integer = (field: string): number | undefined => {
    const v = record[field];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      throw new UsageError(`"${field}" must be a non-negative integer`);
    }
    return v;
  };
  const number = (field: string, max: number): number | undefined => {
    const v = record[field];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > max) {
      throw new UsageError(`"${field}" must be a number between 0 and ${max}`);
    }
    return v;
  };
  /** An optional field as a property when it is set. The pieces below declare what they give, so that a misspelt
   * key fails to compile (spreads escape TypeScript's excess-property check). */
  const optional = <K extends string>(key: K, v: number | undefined) =>
    (v === undefined ? {} : { [key]: v }) as Partial<Record<K, number>>;
  const common = (): { seed?: number; scale?: number } => ({
    ...optional('seed', integer('seed')),
    ...optional('scale', integer('scale')),
  });
  /** Understanding's other views of the image: scales (`TarModel.understand`'s viewScales; [] for none). */
  const views = (): { views?: number[] } => {
    const v = record.views;
    if (v === undefined) return {};
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'number' || !Number.isSafeInteger(s) || s < 1)) {
      throw new UsageError('"views" must be an array of scales (positive integers)');
    }
    return { views: v as number[] };
  };
  const temperature = (): Pick<CliSampling, 'temperature'> => optional('temperature', number('temperature', MAX_TEMPERATURE));
  const guidance = (): Pick<CliSampling, 'guidance'> => optional('guidance', number('guidance', MAX_GUIDANCE));
  const detokGuidance = (): Pick<CliSampling, 'detokGuidance'> =>
    optional('detokGuidance', number('detokGuidance', MAX_GUIDANCE));
  const selfCheck = (): Pick<CliSampling, 'selfCheck'> => {
    const v = record.selfCheck;
    if (v === undefined) return {};
    if (typeof v !== 'boolean') throw new UsageError('"selfCheck" must be true or false');
    return { selfCheck: v };
  };
  switch (record.task) {
    case 'understand':
      return { task: 'understand', image: text('image'), prompt: text('prompt'), ...common(), ...views(), ...temperature() };
    case 'generate':
      return {
        task: 'generate',
        prompt: text('prompt'),
        out: text('out'),
        ...common(),
        ...temperature(),
        ...guidance(),
        ...detokGuidance(),
        ...selfCheck(),
      };
    case 'edit':
      return {
        task: 'edit',
        image: text('image'),
        prompt: text('prompt'),
        out: text('out'),
        ...common(),
        ...optional('imageScale', integer('imageScale')),
        ...temperature(),
        ...guidance(),
        ...detokGuidance(),
        ...selfCheck(),
      };
    case 'reconstruct':
      return { task: 'reconstruct', image: text('image'), out: text('out'), ...common(), ...detokGuidance() };
    default:
      throw new UsageError('"task" must be "understand", "generate", "edit" or "reconstruct"');
  }
}

async function readImage(baseDir: string, path: string): Promise<Uint8Array> {
  try {
    return await readFile(resolve(baseDir, path));
  } catch (error) {
    throw new UsageError(`cannot read image ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}

/** The request's de-tokenizer settings, when it makes a choice. */
function detokSampling(r: Pick<CliSampling, 'detokGuidance'>): { detokSampling?: { cfgScale: number } } {
  return r.detokGuidance === undefined ? {} : { detokSampling: { cfgScale: r.detokGuidance } };
}

export async function runRequest(
  model: TarModel,
  request: CliRequest,
  baseDir: string,
  onProgress?: (event: ProgressEvent) => void,
): Promise<CliResult> {
  const common = {
    ...(request.seed === undefined ? {} : { seed: request.seed }),
    ...(onProgress === undefined ? {} : { onProgress }),
  };
  const sampling = (r: CliSampling) => {
    const chosen = {
      ...(r.temperature === undefined ? {} : { temperature: r.temperature }),
      ...(r.guidance === undefined ? {} : { cfgScale: r.guidance }),
    };
    return {
      ...(Object.keys(chosen).length === 0 ? {} : { sampling: chosen }),
      ...detokSampling(r),
      ...(r.selfCheck === undefined ? {} : { selfCheck: r.selfCheck }),
    };
  };
  switch (request.task) {
    case 'understand': {
      const bytes = await readImage(baseDir, request.image);
      const scale = request.scale === undefined ? {} : { scale: request.scale };
      const views = request.views === undefined ? {} : { viewScales: request.views };
      const result = await model.understand({ image: { bytes }, prompt: request.prompt, ...scale, ...views, ...sampling(request), ...common });
      return { text: result.text, tokens: result.imageTokens.tokens, seed: result.seed };
    }
    case 'reconstruct': {
      // The round trip of the image tokenizer: TA-Tok codes of the image, rendered back to pixels.
      const bytes = await readImage(baseDir, request.image);
      const image = await model.encodeImage(bytes, request.scale);
      const result = await model.renderImage({ ...image, ...detokSampling(request), ...common });
      await writeFile(resolve(baseDir, request.out), result.png);
      return { image: request.out, tokens: image.tokens, seed: result.seed };
    }
    case 'generate':
    case 'edit': {
      const scale = request.scale === undefined ? {} : { scale: request.scale };
      const result =
        request.task === 'generate'
          ? await model.generate({ prompt: request.prompt, ...scale, ...sampling(request), ...common })
          : await model.edit({
              image: { bytes: await readImage(baseDir, request.image) },
              prompt: request.prompt,
              ...scale,
              ...(request.imageScale === undefined ? {} : { imageScale: request.imageScale }),
              ...sampling(request),
              ...common,
            });
      await writeFile(resolve(baseDir, request.out), result.image.png);
      return { image: request.out, tokens: result.image.tokens, seed: result.seed };
    }
  }
}
