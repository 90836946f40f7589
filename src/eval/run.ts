// `npm run eval:model` and tests/eval: turn eval items into one `dialect batch` file, run it through the shipped
// CLI (so the figures are the shipped bundle's, through the TypeScript runtime), and grade every answer with
// src/shapes.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import {
  detectImage, gradeAnswer, gradeEdit, gradeGeneration, gradeRoundTrip, parseDescription, sameScene,
} from '../shapes/index.ts';
import { editingOf, parseManifest, understandingOf } from '../model/manifest.ts';
import { type EvalItem, type EvalSet, type ItemSet, type SampleSpec, buildItems, loadEvalSet, sampleItems } from './eval-set.ts';
import { type EvalReport, type GradedItem, type RunInfo, detailOf, headlineOf, summarise } from './report.ts';

const DIALECT_BIN = fileURLToPath(new URL('../../bin/dialect.js', import.meta.url));
/** The shipped bundle, the default model of the evaluation (as of the CLI). */
export const SHIPPED_BUNDLE_DIR = fileURLToPath(new URL('../../models/tar-shapes/', import.meta.url));

export interface EvalOptions {
  /** Model bundle folder. Defaults to the shipped bundle (models/tar-shapes). */
  model?: string;
  /** Eval set folder. Defaults to eval/shapes. */
  evalDir?: string;
  /** Only the first N records of the eval set. */
  limit?: number;
  /** Only a fixed sample of the items (see sampleItems). */
  sample?: SampleSpec;
  /** Where the batch file, the generated images and items.jsonl go; kept. Defaults to a temporary folder, removed. */
  outDir?: string;
  /** Only the items of these tasks (default: every task). */
  tasks?: readonly EvalItem['task'][];
  /** Only the items of these sets (default: every set). */
  sets?: readonly ItemSet[];
  /** Prompt guidance of every generation and edit (`sampling.image.cfgScale`); default: the bundle's. */
  guidance?: number;
  /** De-tokenizer guidance of every image written (`sampling.detok.cfgScale`): generations, edits and round trips;
   * default: the bundle's. */
  detokGuidance?: number;
  /** Understanding's scale and other views (`understanding` of the manifest) for every question but the scale
   * probe's; default: the bundle's. */
  understandingScale?: number;
  views?: number[];
  /** The scale of every edit that does not name one (its output, and its input encoded at it unless
   * `editImageScale`); default: the bundle's. */
  editScale?: number;
  /** The scale every edit's input image is encoded at; default: the edit's scale. */
  editImageScale?: number;
  /** Every generation and edit with the model's self-check (`selfCheck: true`, src/model/self-check.ts). */
  selfCheck?: boolean;
  /** `dialect batch --concurrency` (default 16) and `--threads`. */
  concurrency?: number;
  threads?: number;
  /** Lines of `dialect batch`'s stderr (progress is drawn only on a terminal, so this is its closing summary). */
  onLog?: (line: string) => void;
}

interface BatchAnswer {
  id: string;
  text?: string;
  image?: string;
  tokens?: number[];
  seed?: number;
  ms?: number;
  error?: { code: string; message: string };
}

/** What an evaluation may set on every request instead of the bundle's defaults. */
export type BatchOverrides = Pick<
  EvalOptions,
  'guidance' | 'detokGuidance' | 'understandingScale' | 'views' | 'editScale' | 'editImageScale' | 'selfCheck'
>;

/** The batch line of an item; outputs go to images/ID.png next to the batch file. */
export function batchLine(item: EvalItem, overrides: BatchOverrides = {}): Record<string, unknown> {
  const common = { id: item.id, seed: item.seed, ...(item.scale === undefined ? {} : { scale: item.scale }) };
  const out = `images/${item.id}.png`;
  const rendered = overrides.detokGuidance === undefined ? {} : { detokGuidance: overrides.detokGuidance };
  const guided = {
    ...(overrides.guidance === undefined ? {} : { guidance: overrides.guidance }),
    ...(overrides.selfCheck === true ? { selfCheck: true } : {}),
    ...rendered,
  };
  switch (item.task) {
    case 'understand': {
      // The scale probe reads each scale alone; the other items read the image as the model (or the override) does,
      // at their own scale when they name one.
      const reading =
        item.set === 'question-scales'
          ? { views: [] }
          : {
              ...(overrides.understandingScale === undefined || item.scale !== undefined ? {} : { scale: overrides.understandingScale }),
              ...(overrides.views === undefined ? {} : { views: overrides.views }),
            };
      return { ...common, ...reading, task: 'understand', image: item.image, prompt: item.question };
    }
    case 'generate':
      return { ...common, task: 'generate', prompt: item.prompt, out, ...guided };
    case 'edit':
      return {
        ...common,
        ...(overrides.editScale === undefined || item.scale !== undefined ? {} : { scale: overrides.editScale }),
        ...(overrides.editImageScale === undefined ? {} : { imageScale: overrides.editImageScale }),
        task: 'edit',
        image: item.image,
        prompt: item.instruction,
        out,
        ...guided,
      };
    case 'reconstruct':
      return { ...common, task: 'reconstruct', image: item.image, out, ...rendered };
  }
}

/** Runs `dialect batch FILE --model DIR` and returns its answers by id. Throws when the batch could not run at all
 * (no bundle, broken bundle: exit code 2 or a crash); a failed line is an answer with an error, graded as wrong. */
export async function runDialectBatch(
  file: string,
  flags: { model: string; concurrency?: number; threads?: number },
  onLog?: (line: string) => void,
): Promise<Map<string, BatchAnswer>> {
  const args = [DIALECT_BIN, 'batch', file, '--model', flags.model];
  if (flags.concurrency !== undefined) args.push('--concurrency', String(flags.concurrency));
  if (flags.threads !== undefined) args.push('--threads', String(flags.threads));
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
    (done, fail) => {
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      child.on('error', fail);
      child.on('close', (exit) => done({ code: exit, stdout: Buffer.concat(out).toString('utf8'), stderr: err }));
    },
  );
  for (const line of stderr.split('\n')) if (line.trim()) onLog?.(line.trim());
  if (code !== 0 && code !== 1) {
    throw new Error(`dialect batch --model ${flags.model} exited with ${code}: ${stderr.trim() || '(no message)'}`);
  }
  const answers = new Map<string, BatchAnswer>();
  for (const line of stdout.split('\n')) {
    if (!line.trim()) continue;
    const answer = JSON.parse(line) as BatchAnswer;
    answers.set(String(answer.id), answer);
  }
  return answers;
}

/** Grades one item from its batch answer (a missing answer or an error line is wrong). */
export async function gradeItem(item: EvalItem, answer: BatchAnswer | undefined, outDir: string): Promise<GradedItem> {
  const graded = (ok: boolean, problems: string[], extra: Partial<GradedItem> = {}): GradedItem => ({
    item, ok, problems, ...(answer?.ms === undefined ? {} : { ms: answer.ms }), ...extra,
  });
  if (answer === undefined) return graded(false, ['no answer']);
  if (answer.error !== undefined) return graded(false, [`${answer.error.code}: ${answer.error.message}`]);
  if (item.task === 'understand') {
    const text = answer.text ?? '';
    const grade = gradeAnswer(text, item.answer, item.kind);
    if (item.kind !== 'describe') return graded(grade.ok, grade.problems, { answer: text, exact: grade.exact });
    const said = parseDescription(text);
    const objectsOk = said !== null && sameScene({ ...said, background: item.scene.background }, item.scene);
    return graded(grade.ok, grade.problems, { answer: text, exact: grade.exact, objectsOk });
  }
  if (answer.image === undefined) return graded(false, ['no image in the answer']);
  let detection;
  try {
    detection = await detectImage(resolve(outDir, answer.image));
  } catch (error) {
    return graded(false, [`cannot read ${answer.image}: ${(error as Error).message}`]);
  }
  const seen = detection.scene ? undefined : detection.problems.join('; ');
  switch (item.task) {
    case 'generate': {
      const grade = gradeGeneration(detection, item.constraints);
      return graded(grade.ok, grade.problems, seen === undefined ? {} : { seen });
    }
    case 'edit': {
      const grade = gradeEdit(detection, item.target, item.source);
      // Correct = the image is the target scene: the edit happened and every other object is unchanged.
      return graded(grade.ok && grade.othersKept, grade.problems, {
        editApplied: grade.editApplied, othersKept: grade.othersKept,
      });
    }
    case 'reconstruct': {
      const grade = gradeRoundTrip(detection, item.scene);
      return graded(grade.ok, grade.problems, { kept: grade.kept, attributes: grade.attributes });
    }
  }
}

/** The bundle's default scale and understanding reading, for the report's labels (undefined when unreadable). */
async function readScales(model: string): Promise<Pick<RunInfo, 'defaultScale' | 'understandingScale' | 'views' | 'editScale'>> {
  try {
    const manifest = parseManifest(JSON.parse(await readFile(join(model, 'manifest.json'), 'utf8')));
    const { scale, viewScales } = understandingOf(manifest);
    return { defaultScale: manifest.defaultScale, understandingScale: scale, views: viewScales, editScale: editingOf(manifest).scale };
  } catch {
    return { defaultScale: undefined, understandingScale: undefined, views: [], editScale: undefined };
  }
}

/** Selects the items, runs them through `dialect batch` and grades them. */
export async function runEvaluation(options: EvalOptions = {}): Promise<EvalReport> {
  const started = performance.now();
  const model = resolve(options.model ?? SHIPPED_BUNDLE_DIR);
  const set: EvalSet = await loadEvalSet(options.evalDir);
  const all = buildItems(set, options.limit === undefined ? {} : { limit: options.limit });
  const sampled = options.sample === undefined ? all : sampleItems(all, options.sample);
  const tasks = options.tasks;
  const sets = options.sets;
  const items = sampled.filter(
    (item) => (tasks === undefined || tasks.includes(item.task)) && (sets === undefined || sets.includes(item.set)),
  );
  const line = (item: EvalItem) => batchLine(item, options);
  const outDir = options.outDir === undefined ? await mkdtemp(join(tmpdir(), 'dialect-eval-')) : resolve(options.outDir);
  try {
    await mkdir(join(outDir, 'images'), { recursive: true });
    const file = join(outDir, 'requests.jsonl');
    await writeFile(file, items.map((item) => JSON.stringify(line(item))).join('\n') + '\n');
    const batchStarted = performance.now();
    const answers = await runDialectBatch(
      file,
      {
        model,
        ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
        ...(options.threads === undefined ? {} : { threads: options.threads }),
      },
      options.onLog,
    );
    const batchSeconds = (performance.now() - batchStarted) / 1000;
    const graded: GradedItem[] = [];
    for (const item of items) graded.push(await gradeItem(item, answers.get(item.id), outDir));
    if (options.outDir !== undefined) {
      await writeFile(
        join(outDir, 'items.jsonl'),
        graded.map((g) => JSON.stringify({ id: g.item.id, set: g.item.set, task: g.item.task, ok: g.ok,
          headline: headlineOf(g), detail: detailOf(g), problems: g.problems, answer: g.answer, ms: g.ms,
          request: line(g.item) })).join('\n') + '\n',
      );
    }
    return summarise(graded, {
      model,
      evalDir: set.dir,
      records: options.limit === undefined ? set.records.length : Math.min(options.limit, set.records.length),
      seedStart: set.manifest.seedStart,
      ...(await readScales(model)),
      sample: options.sample,
      guidance: options.guidance,
      detokGuidance: options.detokGuidance,
      ...(options.understandingScale === undefined ? {} : { understandingScale: options.understandingScale }),
      ...(options.views === undefined ? {} : { views: options.views }),
      ...(options.editScale === undefined ? {} : { editScale: options.editScale }),
      ...(options.selfCheck === true ? { selfCheck: true } : {}),
      concurrency: options.concurrency ?? 16,
      batchSeconds,
      seconds: (performance.now() - started) / 1000,
      outDir: options.outDir === undefined ? undefined : outDir,
    });
  } finally {
    if (options.outDir === undefined) await rm(outDir, { recursive: true, force: true });
  }
}
