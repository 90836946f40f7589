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
import { parseArgs } from 'node:util';
import { parseOptionalInteger } from '../src/cli/model-options.ts';
import { parseOrExit, runSweep, tuningSet } from './tuning.ts';

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
  const evalDir = tuningSet(values.eval);
  const readings = values.readings.split(',').map(parseReading);
  return { evalDir, model: values.model, readings, limit, json: values.json };
}

const options = parseOrExit('bench:understanding', USAGE, parse);
await runSweep({
  setting: 'reading',
  name: (reading) => reading.name,
  settings: options.readings,
  common: {
    evalDir: options.evalDir,
    sets: ['questions', 'describe'],
    ...(options.limit === undefined ? {} : { limit: options.limit }),
    ...(options.model === undefined ? {} : { model: options.model }),
  },
  options: (reading) => ({ understandingScale: reading.scale, views: reading.views }),
  rows: ROWS,
  json: options.json,
  record: (reading) => ({ reading: reading.name, scale: reading.scale, views: reading.views }),
  width: 18,
});
