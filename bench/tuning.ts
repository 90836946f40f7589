// Shared by the tuning benchmarks (bench:guidance, bench:understanding): each evaluates one bundle setting per row on
// a TUNING set (an eval set drawn from seeds that eval/shapes does not use, so that the held-out figures stay held
// out) and prints the chosen metrics, one row per setting.
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseOptionalInteger, parseOptionalNumber } from '../src/cli/model-options.ts';
import { MAX_GUIDANCE } from '../src/cli/requests.ts';
import { DEFAULT_EVAL_DIR, type EvalItem, type EvalOptions, type EvalReport, runEvaluation, SHIPPED_BUNDLE_DIR } from '../src/eval/index.ts';

/** The tuning set's folder; refuses none and the held-out set. */
export function tuningSet(evalDir: string | undefined): string {
  if (evalDir === undefined) throw new Error('--eval DIR is required (a tuning set, not eval/shapes)');
  if (resolve(evalDir) === resolve(DEFAULT_EVAL_DIR)) {
    throw new Error('eval/shapes is the held-out set of the published figures: tune on another set (see the header)');
  }
  return evalDir;
}

/** Flags of the benchmarks that write several candidates per request (bench:self-check, bench:detok-reencode). */
export const CANDIDATE_OPTIONS = {
  eval: { type: 'string' },
  model: { type: 'string' },
  limit: { type: 'string' },
  candidates: { type: 'string' },
  temperature: { type: 'string' },
} as const;

/** Those flags' values: a tuning set, a bundle (the shipped one by default), a record limit, the candidates (at most
 * `defaults.maxCandidates`) and their sampling temperature, with the benchmark's defaults. */
export function parseCandidateOptions(
  values: { eval?: string; model?: string; limit?: string; candidates?: string; temperature?: string },
  defaults: { candidates: number; maxCandidates: number; temperature: number },
) {
  return {
    evalDir: tuningSet(values.eval),
    model: values.model ?? SHIPPED_BUNDLE_DIR,
    limit: parseOptionalInteger('--limit', values.limit, 1, 1_000_000),
    candidates: parseOptionalInteger('--candidates', values.candidates, 1, defaults.maxCandidates) ?? defaults.candidates,
    temperature: parseOptionalNumber('--temperature', values.temperature, 0, 10) ?? defaults.temperature,
  };
}

/** The command line of a tuning benchmark, or its usage and exit code 2 when it is wrong. */
export function parseOrExit<T>(tool: string, usage: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    process.stderr.write(`${tool}: ${(error as Error).message}\n\n${usage}\n`);
    process.exit(2);
  }
}

/** `--scales 1,1.25,2`: classifier-free guidance scales. */
export function parseGuidanceScales(text: string): number[] {
  return text.split(',').map((part) => parseOptionalNumber('--scales', part, 0, MAX_GUIDANCE) as number);
}

/** `--tasks a,b`: eval tasks, each one of `allowed`. */
export function parseTasks(text: string, allowed: readonly EvalItem['task'][]): EvalItem['task'][] {
  return text.split(',').map((task) => {
    if (!(allowed as readonly string[]).includes(task)) throw new Error(`--tasks: "${task}" is not one of ${allowed.join(', ')}`);
    return task as EvalItem['task'];
  });
}

export interface Sweep<S> {
  /** Column title of the setting, and how a setting is named in its row. */
  setting: string;
  name: (setting: S) => string;
  /** The settings, each evaluated with `options(setting)` added to the common options. */
  settings: readonly S[];
  common: EvalOptions;
  options: (setting: S) => EvalOptions;
  /** Metric ids and their column titles. */
  rows: readonly (readonly [string, string])[];
  /** Where the summary goes as JSON (each setting's record plus its metrics). */
  json?: string | undefined;
  record: (setting: S) => Record<string, unknown>;
  width: number;
}

function cell(report: EvalReport, id: string): string {
  const metric = report.metrics.find((m) => m.id === id);
  if (metric === undefined || metric.count === 0) return '—';
  return `${metric.correct}/${metric.count} ${(100 * (metric.value ?? 0)).toFixed(1)}%`;
}

/** Runs the sweep, printing each row as its evaluation ends. */
export async function runSweep<S>(sweep: Sweep<S>): Promise<void> {
  const line = (cells: string[]) => process.stdout.write(`${cells.map((c) => c.padStart(sweep.width)).join('')}\n`);
  line([sweep.setting, ...sweep.rows.map(([, label]) => label)]);
  const summary = [];
  for (const setting of sweep.settings) {
    const report = await runEvaluation({ ...sweep.common, ...sweep.options(setting) });
    line([sweep.name(setting), ...sweep.rows.map(([id]) => cell(report, id))]);
    summary.push({
      ...sweep.record(setting),
      evalSet: report.evalSet,
      metrics: Object.fromEntries(sweep.rows.map(([id]) => [id, report.metrics.find((m) => m.id === id)])),
    });
  }
  if (sweep.json !== undefined) await writeFile(sweep.json, `${JSON.stringify(summary, null, 2)}\n`);
}
