// npm run bench:detok -- --eval DIR [--model DIR] [--scales 1,1.5,2,3] [--tasks reconstruct,generate,edit] [--limit N]
//                        [--json PATH]
//
// Chooses a bundle's de-tokenizer guidance (`sampling.detok.cfgScale`: classifier-free guidance of the AR-DTok's VQ
// codes by the image tokens): evaluates every image the model writes — round trips, generations, edits — at each
// scale on a TUNING set and prints one row per scale. The training run's export picks it from a PyTorch sample of
// ~120 generations; this measures it through the shipped runtime on as many items as the tuning set holds:
//
//   training/py -m shapes.dataset eval --out /tmp/tune --count 2000 --seed-start 1500000000
//   npm run bench:detok -- --eval /tmp/tune
//
// Questions are not run (they read image tokens, never pixels).
import { parseArgs } from 'node:util';
import { parseOptionalInteger } from '../src/cli/model-options.ts';
import { parseGuidanceScales, parseOrExit, parseTasks, runSweep, tuningSet } from './tuning.ts';

const USAGE = `usage: npm run bench:detok -- --eval DIR [--model DIR] [--scales 1,1.5,2,3] [--tasks reconstruct,generate,edit]
                                [--limit N] [--json PATH]`;

const ROWS = [
  ['round-trip', 'round trip'],
  ['round-trip.attributes', 'rt attributes'],
  ['generate.one-object', 'one-object'],
  ['generate.multi-object', '2-3 objects'],
  ['edit', 'edits'],
] as const;

const WRITING_TASKS = ['reconstruct', 'generate', 'edit'] as const;

function parse() {
  const { values } = parseArgs({
    options: {
      eval: { type: 'string' },
      model: { type: 'string' },
      scales: { type: 'string', default: '1,1.5,2,3' },
      tasks: { type: 'string', default: WRITING_TASKS.join(',') },
      limit: { type: 'string' },
      json: { type: 'string' },
    },
  });
  const limit = parseOptionalInteger('--limit', values.limit, 1, 1_000_000);
  const evalDir = tuningSet(values.eval);
  const scales = parseGuidanceScales(values.scales);
  const tasks = parseTasks(values.tasks, WRITING_TASKS);
  return { evalDir, model: values.model, scales, tasks, limit, json: values.json };
}

const options = parseOrExit('bench:detok', USAGE, parse);
await runSweep({
  setting: 'detok cfg',
  name: String,
  settings: options.scales,
  common: {
    evalDir: options.evalDir,
    tasks: options.tasks,
    // The round trip at the default scale only: the per-scale probe would double the round trips for a breakdown
    // this choice does not need.
    sets: ['round-trip', 'generate', 'edit'],
    ...(options.limit === undefined ? {} : { limit: options.limit }),
    ...(options.model === undefined ? {} : { model: options.model }),
  },
  options: (scale) => ({ detokGuidance: scale }),
  rows: ROWS,
  json: options.json,
  record: (scale) => ({ detokGuidance: scale }),
  width: 16,
});
