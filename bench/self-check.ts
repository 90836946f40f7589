// npm run bench:self-check -- --eval DIR [--limit N] [--candidates 8] [--temperature 0.7] [--tasks generate,edit]
//
// Measures what the self-check (the manifest's `selfCheck`, src/model/self-check.ts) buys with given settings (the
// shipped 8 candidates at temperature 0.7 are the only ones measured so far): for every generation and edit of a TUNING set it writes the first image and `--candidates` sampled ones
// (temperature, other seeds), has the same model describe each from its own image tokens ("Describe the image.", no
// re-encoding), and keeps the first whose description the product's judge passes (src/shapes/judge.ts: for a
// generation, the prompt's constraints; for an edit, the model's own description of the input with the instruction
// applied), the first image first, it when none passes. Unlike the product, it renders every candidate, so that it can print, per task, the first
// image's rate, the self-checked rate, the rate if an oracle picked (any candidate right) and how often the model's
// check agrees with the pixel checker. The tuning set is an eval set drawn from other seeds of the eval range than
// eval/shapes:
//
//   training/py -m shapes.dataset eval --out /tmp/tune --count 2000 --seed-start 1500000000
//   npm run bench:self-check -- --eval /tmp/tune --limit 800
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { buildItems, type EvalItem, loadEvalSet } from '../src/eval/index.ts';
import { type ImageResult, TarModel } from '../src/model/index.ts';
import { detectImage } from '../src/shapes/image.ts';
import { gradeEdit, gradeGeneration } from '../src/shapes/grade.ts';
import { judgeShapes } from '../src/shapes/judge.ts';
import { CANDIDATE_OPTIONS, parseCandidateOptions, parseOrExit, parseTasks } from './tuning.ts';

const USAGE = `usage: npm run bench:self-check -- --eval DIR [--model DIR] [--limit N] [--candidates 8] [--temperature 0.7]
                                     [--tasks generate,edit]`;
const DESCRIBE = 'Describe the image.';

function parse() {
  const { values } = parseArgs({ options: { ...CANDIDATE_OPTIONS, tasks: { type: 'string', default: 'generate,edit' } } });
  return {
    ...parseCandidateOptions(values, { candidates: 8, maxCandidates: 64, temperature: 0.7 }),
    tasks: parseTasks(values.tasks, ['generate', 'edit']),
  };
}

const options = parseOrExit('bench:self-check', USAGE, parse);
const set = await loadEvalSet(options.evalDir);
const items = buildItems(set, options.limit === undefined ? {} : { limit: options.limit }).filter(
  (item) => (item.set === 'generate' || item.set === 'edit') && options.tasks.includes(item.task),
);
const model = await TarModel.load({ bundleDir: options.model });

type Writing = Extract<EvalItem, { task: 'generate' | 'edit' }>;

/** The model's own reading of image tokens, as the product's self-check reads them. */
async function reading(image: { tokens: number[]; scale: number }): Promise<string> {
  return (await model.understand({ image, prompt: DESCRIBE, sampling: { temperature: 0 }, viewScales: [] })).text;
}

/** Whether a written image is right, by the pixel checker (what eval:model grades). */
async function right(item: Writing, result: ImageResult): Promise<boolean> {
  const detection = await detectImage(result.image.png);
  if (item.task === 'generate') return gradeGeneration(detection, item.constraints).ok;
  const grade = gradeEdit(detection, item.target, item.source);
  return grade.ok && grade.othersKept;
}

interface Row {
  items: number;
  greedy: number;
  checked: number;
  oracle: number;
  agree: number;
  judged: number;
}
const rows = new Map<string, Row>();

for (const item of items as Writing[]) {
  const bytes = item.task === 'edit' ? await readFile(item.image) : undefined;
  const write = (seed: number, temperature: number) =>
    item.task === 'generate'
      ? model.generate({ prompt: item.prompt, seed, sampling: { temperature } })
      : model.edit({ image: { bytes: bytes as Uint8Array }, prompt: item.instruction, seed, sampling: { temperature } });
  const results = await Promise.all([
    write(item.seed, 0),
    ...Array.from({ length: options.candidates }, (_, k) => write(item.seed + 1000 * (k + 1), options.temperature)),
  ]);
  // The judge's question: the request, and for an edit the model's reading of its input.
  const input = item.task === 'edit' ? results[0]?.inputImageTokens : undefined;
  const request =
    item.task === 'generate'
      ? { task: 'generate' as const, prompt: item.prompt }
      : { task: 'edit' as const, prompt: item.instruction, ...(input === undefined ? {} : { input: await reading(input) }) };
  const judged = await Promise.all(results.map(async (r) => judgeShapes(request, await reading(r.image))));
  const truth = await Promise.all(results.map((r) => right(item, r)));
  const chosen = Math.max(0, judged.indexOf(true));
  const key = item.task === 'edit' ? 'edits' : item.constraints.objects.length === 1 ? 'one-object' : '2-3 objects';
  const row = rows.get(key) ?? { items: 0, greedy: 0, checked: 0, oracle: 0, agree: 0, judged: 0 };
  row.items += 1;
  row.greedy += truth[0] ? 1 : 0;
  row.checked += truth[chosen] ? 1 : 0;
  row.oracle += truth.some(Boolean) ? 1 : 0;
  row.agree += judged.filter((j, i) => j === truth[i]).length;
  row.judged += judged.length;
  rows.set(key, row);
}
await model.dispose();

const pct = (n: number, d: number) => `${((100 * n) / Math.max(1, d)).toFixed(1)}%`;
console.log(`${options.candidates} sampled candidates at temperature ${options.temperature} beside the greedy one`);
console.log(['task', 'items', 'greedy', 'self-checked', 'oracle', 'check agrees'].map((c) => c.padStart(14)).join(''));
for (const [key, r] of rows) {
  console.log([key, String(r.items), pct(r.greedy, r.items), pct(r.checked, r.items), pct(r.oracle, r.items), pct(r.agree, r.judged)]
    .map((c) => c.padStart(14)).join(''));
}
