// npm run bench:understanding -- --eval DIR [--model DIR] [--readings 2,3,2+3,3+2] [--limit N] [--json PATH]
//
// Chooses how a bundle reads an uploaded image (the manifest's `understanding`: the scale it is encoded at, and the
// scales of its other views, src/model/views.ts): asks the questions and "Describe the image." of a TUNING set once
// per reading and prints one row each. A reading is a scale, or scales joined by "+": the first is the encoding's
// scale, the others its views ("2+3": scale 2, with the scale-3 tokens as a second view). The tuning set is an eval
// set drawn from other seeds of the eval range than eval/shapes, so that the held-out figures stay held out:
//
//   training/py -m shapes.dataset eval --out /tmp/tune --count 2000 --seed-start 1500000000
//   npm run bench:understanding -- --eval /tmp/tune --limit 1000
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseOptionalInteger } from '../src/cli/model-options.ts';
import { DEFAULT_EVAL_DIR, type EvalReport, runEvaluation } from '../src/eval/index.ts';

const USAGE = `usage: npm run bench:understanding -- --eval DIR [--model DIR] [--readings 2,3,2+3,3+2] [--limit N]
                                        [--json PATH]`;

const ROWS = [
  ['understand.questions', 'questions'],
  ['understand.describe', 'describe'],
  ['understand.kind.shape', 'shape'],
  ['understand.kind.where', 'where'],
] as const;

interface Reading {
  name: string;
  scale: number;
  views: number[];
}

function parseReading(text: string): Reading {
  const scales = text.split('+').map((part) => parseOptionalInteger('--readings', part, 1, 16) as number);
  if (new Set(scales).size !== scales.length) throw new Error(`--readings: "${text}" repeats a scale`);
  return { name: text, scale: scales[0] as number, views: scales.slice(1) };
}

function parse() {
  const { values } = parseArgs({
    options: {
      eval: { type: 'string' },
      model: { type: 'string' },
      readings: { type: 'string', default: '2,3,2+3,3+2' },
      limit: { type: 'string' },
      json: { type: 'string' },
    },
  });
  const limit = parseOptionalInteger('--limit', values.limit, 1, 1_000_000);
  if (values.eval === undefined) throw new Error('--eval DIR is required (a tuning set, not eval/shapes)');
  if (resolve(values.eval) === resolve(DEFAULT_EVAL_DIR)) {
    throw new Error('eval/shapes is the held-out set of the published figures: tune on another set (see the header)');
  }
  const readings = values.readings.split(',').map(parseReading);
  return { evalDir: values.eval, model: values.model, readings, limit, json: values.json };
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
    process.stderr.write(`bench:understanding: ${(error as Error).message}\n\n${USAGE}\n`);
    process.exitCode = 2;
    return;
  }
  const results: { reading: Reading; report: EvalReport }[] = [];
  const header = ['reading', ...ROWS.map(([, label]) => label)];
  process.stdout.write(`${header.map((h) => h.padStart(18)).join('')}\n`);
  for (const reading of options.readings) {
    const report = await runEvaluation({
      evalDir: options.evalDir,
      sets: ['questions', 'describe'],
      understandingScale: reading.scale,
      views: reading.views,
      ...(options.limit === undefined ? {} : { limit: options.limit }),
      ...(options.model === undefined ? {} : { model: options.model }),
    });
    results.push({ reading, report });
    const cells = [reading.name, ...ROWS.map(([id]) => cell(report, id))];
    process.stdout.write(`${cells.map((c) => c.padStart(18)).join('')}\n`);
  }
  if (options.json !== undefined) {
    const summary = results.map(({ reading, report }) => ({
      reading: reading.name,
      scale: reading.scale,
      views: reading.views,
      evalSet: report.evalSet,
      metrics: Object.fromEntries(ROWS.map(([id]) => [id, report.metrics.find((m) => m.id === id)])),
    }));
    await writeFile(options.json, `${JSON.stringify(summary, null, 2)}\n`);
  }
}

await main();
