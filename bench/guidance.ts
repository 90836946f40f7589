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
import { parseArgs } from 'node:util';
import { parseOptionalInteger } from '../src/cli/model-options.ts';
import { parseGuidanceScales, parseOrExit, parseTasks, runSweep, tuningSet } from './tuning.ts';

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
  const evalDir = tuningSet(values.eval);
  const scales = parseGuidanceScales(values.scales);
  const tasks = parseTasks(values.tasks, ['generate', 'edit']);
  return { evalDir, model: values.model, scales, tasks, limit, json: values.json };
}

const options = parseOrExit('bench:guidance', USAGE, parse);
await runSweep({
  setting: 'scale',
  name: String,
  settings: options.scales,
  common: {
    evalDir: options.evalDir,
    tasks: options.tasks,
    ...(options.limit === undefined ? {} : { limit: options.limit }),
    ...(options.model === undefined ? {} : { model: options.model }),
  },
  options: (scale) => ({ guidance: scale }),
  rows: ROWS,
  json: options.json,
  record: (scale) => ({ scale }),
  width: 16,
});
