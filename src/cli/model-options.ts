import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import { TarModel } from '../model/index.ts';
import { JUDGE_MODULE } from '../shapes/judge.ts';
import { UsageError } from './usage-error.ts';

/** The bundle that ships in the repository: the default of the CLI and the server. */
export const DEFAULT_BUNDLE_DIR = fileURLToPath(new URL('../../models/tar-shapes/', import.meta.url));

/** Flags every model command shares: which model, and how it runs. */
export const modelFlags = {
  model: { type: 'string' },
  provider: { type: 'string' },
  threads: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

/** Flags of a single request (`dialect generate` …); a batch file sets these per line instead. */
export const requestFlags = {
  seed: { type: 'string' },
  scale: { type: 'string' },
  views: { type: 'string' },
  temperature: { type: 'string' },
  guidance: { type: 'string' },
  'detok-guidance': { type: 'string' },
  'self-check': { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

export interface ModelFlagValues {
  model?: string | undefined;
  provider?: string | undefined;
  threads?: string | undefined;
}

export async function loadModelFromFlags(flags: ModelFlagValues, maxBatch?: number): Promise<TarModel> {
  const bundleDir = resolve(flags.model ?? process.env.DIALECT_MODEL ?? DEFAULT_BUNDLE_DIR);
  if (!existsSync(bundleDir)) {
    throw new UsageError(`no model bundle at ${bundleDir} (pass --model DIR or set DIALECT_MODEL)`);
  }
  const provider = flags.provider ?? process.env.DIALECT_PROVIDER ?? 'cpu';
  if (provider !== 'cpu' && provider !== 'cuda' && provider !== 'webgpu') {
    throw new UsageError(`--provider must be cpu, cuda or webgpu, not "${provider}"`);
  }
  const threads = flags.threads === undefined ? undefined : parseInteger('--threads', flags.threads, 1, 256);
  return TarModel.load({
    bundleDir,
    provider,
    judgeModule: JUDGE_MODULE,
    ...(threads === undefined ? {} : { intraOpThreads: threads }),
    ...(maxBatch === undefined ? {} : { maxBatch }),
  });
}

export function parseInteger(flag: string, text: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(text)) throw new UsageError(`${flag} must be an integer, not "${text}"`);
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`${flag} must be between ${min} and ${max}, not ${text}`);
  }
  return value;
}

export function parseOptionalInteger(flag: string, text: string | undefined, min: number, max: number) {
  return text === undefined ? undefined : parseInteger(flag, text, min, max);
}

export function parseOptionalNumber(flag: string, text: string | undefined, min: number, max: number) {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < min || value > max) {
    throw new UsageError(`${flag} must be a number between ${min} and ${max}, not "${text}"`);
  }
  return value;
}
