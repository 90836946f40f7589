// npm run bench:guidance -- --eval DIR [--model DIR] [--scales 1,1.1,1.25,1.5] [--tasks generate,edit] [--limit N]
//                           [--json PATH]
//
// Chooses a bundle's prompt guidance (`sampling.image.cfgScale`): evaluates its generations and edits at each scale
// on a TUNING set and prints one row per scale. The tuning set is an eval set drawn from other seeds of the eval range
// than eval/shapes, so that the held-out figures in docs/model-card.md stay held out:
//
//   training/py -m shapes.dataset eval --out /tmp/tune --count 2000 --seed-start 1500000000
//   npm run bench:guidance -- --eval /tmp/tune
//
// Only generation and edit items are run (understanding and round trips do not depend on the scale).
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseOptionalInteger, parseOptionalNumber } from '../src/cli/model-options.ts';
import { MAX_GUIDANCE } from '../src/cli/requests.ts';
import { DEFAULT_EVAL_DIR, type EvalItem, type EvalReport, runEvaluation } from '../src/eval/index.ts';

const USAGE = `usage: npm run bench:guidance -- --eval DIR [--model DIR] [--scales 1,1.1,1.25,1.5] [--tasks generate,edit]
                                   [--limit N] [--json PATH]`;

const ROWS = [
  ['generate.one-object', 'one-object'],
  ['generate.multi-object', '2-3 objects'],
  ['edit', 'edits'],
  ['edit.applied', 'edit applied'],
  ['edit.others-kept', 'others kept'],
] as const;

function parse() {
  const { values } = parseArgs({
    options: {
      eval: { type: 'string' },
      model: { type: 'string' },
      scales: { type: 'string', default: '1,1.1,1.25,1.5' },
      tasks: { type: 'string', default: 'generate,edit' },
      limit: { type: 'string' },
      json: { type: 'string' },
    },
  });
  const limit = parseOptionalInteger('--limit', values.limit, 1, 1_000_000);
  if (values.eval === undefined) throw new Error('--eval DIR is required (a tuning set, not eval/shapes)');
  if (resolve(values.eval) === resolve(DEFAULT_EVAL_DIR)) {
    throw new Error('eval/shapes is the held-out set of the published figures: tune on another set (see the header)');
  }
  const scales = values.scales.split(',').map((text) => parseOptionalNumber('--scales', text, 0, MAX_GUIDANCE) as number);
  const tasks = values.tasks.split(',').map((task) => {
    if (task !== 'generate' && task !== 'edit') throw new Error(`--tasks: "${task}" is not generate or edit`);
    return task as EvalItem['task'];
  });
  return { evalDir: values.eval, model: values.model, scales, tasks, limit, json: values.json };
}

function cell(report: EvalReport, id: string): string {
  const metric = report.metrics.find((m) => m.id === id);
  if (metric === undefined || metric.count === 0) return '—';
  return `${metric.correct}/${metric.count} ${(100 * (metric.value ?? 0)).toFixed(1)}%`;
}

async function main(): Promise<void> {
  let options;
  try {
    options = parse();
  } catch (error) {
    process.stderr.write(`bench:guidance: ${(error as Error).message}\n\n${USAGE}\n`);
    process.exitCode = 2;
    return;
  }
  const reports: { scale: number; report: EvalReport }[] = [];
  const header = ['scale', ...ROWS.map(([, label]) => label)];
  process.stdout.write(`${header.map((h) => h.padStart(16)).join('')}\n`);
  for (const scale of options.scales) {
    const report = await runEvaluation({
      evalDir: options.evalDir,
      tasks: options.tasks,
      guidance: scale,
      ...(options.limit === undefined ? {} : { limit: options.limit }),
      ...(options.model === undefined ? {} : { model: options.model }),
    });
    reports.push({ scale, report });
    const cells = [String(scale), ...ROWS.map(([id]) => cell(report, id))];
    process.stdout.write(`${cells.map((c) => c.padStart(16)).join('')}\n`);
  }
  if (options.json !== undefined) {
    const summary = reports.map(({ scale, report }) => ({
      scale,
      evalSet: report.evalSet,
      metrics: Object.fromEntries(ROWS.map(([id]) => [id, report.metrics.find((m) => m.id === id)])),
    }));
    await writeFile(options.json, `${JSON.stringify(summary, null, 2)}\n`);
  }
}

await main();
