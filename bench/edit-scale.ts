// npm run bench:edit-scale -- --eval DIR [--model DIR] [--scales 2,3,1,2>3] [--limit N] [--json PATH]
//
// Chooses the scale a bundle edits an uploaded image at (the manifest's `editing.scale`: the upload is encoded at it
// and the edit written at it): evaluates the edits of a TUNING set once per setting and prints one row each, by kind
// of edit. A setting is a scale, or "IN>OUT": the input encoded at IN, the edit written at OUT (what editing an image
// held at another scale amounts to). The tuning set is an eval set drawn from other seeds of the eval range than
// eval/shapes, so that the held-out figures stay held out:
//
//   training/py -m shapes.dataset eval --out /tmp/tune --count 2000 --seed-start 1500000000
//   npm run bench:edit-scale -- --eval /tmp/tune
import { parseArgs } from 'node:util';
import { parseOptionalInteger } from '../src/cli/model-options.ts';
import { parseOrExit, runSweep, tuningSet } from './tuning.ts';

const USAGE = `usage: npm run bench:edit-scale -- --eval DIR [--model DIR] [--scales 2,3,1,2>3] [--limit N]
                                     [--json PATH]`;

const ROWS = [
  ['edit', 'edits'],
  ['edit.applied', 'edit applied'],
  ['edit.others-kept', 'others kept'],
  ['edit.op.move', 'move'],
  ['edit.op.remove', 'remove'],
  ['edit.op.resize', 'resize'],
  ['edit.op.recolor', 'recolor'],
  ['edit.op.add', 'add'],
  ['edit.op.background', 'background'],
] as const;

interface Setting {
  name: string;
  input: number;
  output: number;
}

function parseSetting(text: string): Setting {
  const parts = text.split('>').map((part) => parseOptionalInteger('--scales', part, 1, 16) as number);
  const [input, output = input] = parts;
  if (parts.length > 2 || input === undefined || output === undefined) {
    throw new Error(`--scales: "${text}" is not SCALE or IN>OUT`);
  }
  return { name: text, input, output };
}

function parse() {
  const { values } = parseArgs({
    options: {
      eval: { type: 'string' },
      model: { type: 'string' },
      scales: { type: 'string', default: '2,3,1' },
      limit: { type: 'string' },
      json: { type: 'string' },
    },
  });
  const limit = parseOptionalInteger('--limit', values.limit, 1, 1_000_000);
  const evalDir = tuningSet(values.eval);
  const scales = values.scales.split(',').map(parseSetting);
  return { evalDir, model: values.model, scales, limit, json: values.json };
}

const options = parseOrExit('bench:edit-scale', USAGE, parse);
await runSweep({
  setting: 'scale',
  name: (setting) => setting.name,
  settings: options.scales,
  common: {
    evalDir: options.evalDir,
    tasks: ['edit'],
    ...(options.limit === undefined ? {} : { limit: options.limit }),
    ...(options.model === undefined ? {} : { model: options.model }),
  },
  options: (setting) => ({ editScale: setting.output, editImageScale: setting.input }),
  rows: ROWS,
  json: options.json,
  record: (setting) => ({ editScale: setting.output, editImageScale: setting.input }),
  width: 16,
});
