// npm run bench:detok-reencode -- --eval DIR [--model DIR] [--limit N] [--candidates N] [--temperature T]
//                                  [--scale S] [--json PATH]
//
// An experiment, not a product setting: would a de-tokenizer that checks its own pixels keep more of an image's round
// trip? For each round-trip image of a TUNING set it encodes the image at `--scale`, renders the tokens N times
// (the bundle's greedy de-tokenizer, then N − 1 samples of the AR-DTok's VQ codes at `--temperature`), re-encodes
// every rendering at the same scale and keeps the one whose tokens agree with the image's at the most positions
// (the greedy one on ties) — or, with `--judge reading`, has the model describe the uploaded image and each rendering
// ("Describe the image.", greedy, read as uploads are) and keeps the first rendering whose description is the
// image's (the greedy one when none is). It prints the round trip (src/shapes' gradeRoundTrip) of the greedy rendering, of the
// one kept, and of an oracle that keeps any right rendering (what a perfect check could reach with these
// candidates), with each image's time for the N renderings and re-encodings. Only public TarModel calls
// (encodeImage, renderImage), so it measures any bundle:
//
//   training/py -m shapes.dataset eval --out /tmp/tune --count 2000 --seed-start 1500000000
//   npm run bench:detok-reencode -- --eval /tmp/tune --limit 300 --candidates 4 [--judge agreement|reading]
import { readFile, writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { parseOptionalInteger } from '../src/cli/model-options.ts';
import { buildItems, loadEvalSet } from '../src/eval/index.ts';
import { TarModel } from '../src/model/index.ts';
import { decodeImage, gradeRoundTrip } from '../src/shapes/index.ts';
import { CANDIDATE_OPTIONS, parseCandidateOptions, parseOrExit } from './tuning.ts';

const USAGE = `usage: npm run bench:detok-reencode -- --eval DIR [--model DIR] [--limit N] [--candidates N] [--temperature T]
                                        [--scale S] [--judge agreement|reading] [--json PATH]`;

function parse() {
  const { values } = parseArgs({
    options: { ...CANDIDATE_OPTIONS, scale: { type: 'string' }, judge: { type: 'string', default: 'agreement' }, json: { type: 'string' } },
  });
  if (values.judge !== 'agreement' && values.judge !== 'reading') {
    throw new Error(`--judge must be "agreement" or "reading", not "${values.judge}"`);
  }
  // Eight renderings of a guided de-tokenizer are 16 rows: one batch of the runtime's default size.
  const common = parseCandidateOptions(values, { candidates: 4, maxCandidates: 8, temperature: 0.7 });
  return {
    ...common,
    limit: common.limit ?? 300,
    scale: parseOptionalInteger('--scale', values.scale, 1, 64),
    judge: values.judge,
    json: values.json,
  };
}

const DESCRIBE = 'Describe the image.';

/** Positions at which two token sequences agree. */
function agreement(a: readonly number[], b: readonly number[]): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same;
}

const options = parseOrExit('bench:detok-reencode', USAGE, parse);
const set = await loadEvalSet(options.evalDir);
const items = buildItems(set, { limit: options.limit }).filter((item) => item.set === 'round-trip');
const model = await TarModel.load({ bundleDir: options.model, intraOpThreads: 1 });
const scale = options.scale ?? model.info().defaultScale;
const counts = { greedy: 0, kept: 0, oracle: 0, keptOther: 0 };
const milliseconds: number[] = [];
try {
  for (const item of items) {
    if (item.task !== 'reconstruct') continue;
    const bytes = await readFile(item.image);
    const image = await model.encodeImage(bytes, scale);
    const start = performance.now();
    // All renderings at once, so that the AR-DTok decodes them as one batch (as a product setting would).
    const renderings = await Promise.all(
      Array.from({ length: options.candidates }, (_, k) =>
        model.renderImage({
          ...image,
          seed: item.seed + k,
          ...(k === 0 ? {} : { detokSampling: { temperature: options.temperature } }),
        }),
      ),
    );
    let kept: number;
    if (options.judge === 'reading') {
      const read = async (png: Uint8Array) =>
        (await model.understand({ image: { bytes: png }, prompt: DESCRIBE, sampling: { temperature: 0 }, seed: item.seed })).text;
      const [wanted, ...readings] = await Promise.all([read(bytes), ...renderings.map((r) => read(r.png))]);
      kept = Math.max(0, readings.indexOf(wanted as string));
    } else {
      const scores: number[] = [];
      for (const rendering of renderings) scores.push(agreement((await model.encodeImage(rendering.png, scale)).tokens, image.tokens));
      kept = scores.indexOf(Math.max(...scores));
    }
    milliseconds.push(performance.now() - start);
    const right = await Promise.all(
      renderings.map(async (r) => gradeRoundTrip(await decodeImage(r.png), item.scene).ok),
    );
    counts.greedy += Number(right[0]);
    counts.kept += Number(right[kept]);
    counts.oracle += Number(right.some(Boolean));
    counts.keptOther += Number(kept !== 0);
  }
} finally {
  await model.dispose();
}

const n = milliseconds.length;
const pct = (x: number) => `${((100 * x) / n).toFixed(1)} %`;
milliseconds.sort((a, b) => a - b);
const p50 = milliseconds[Math.floor(n / 2)] ?? 0;
const result = {
  model: options.model, evalSet: options.evalDir, images: n, scale, candidates: options.candidates,
  temperature: options.temperature, judge: options.judge, greedy: counts.greedy / n, kept: counts.kept / n, oracle: counts.oracle / n,
  keptOther: counts.keptOther / n, p50Ms: Math.round(p50),
};
process.stdout.write(
  `${n} round trips at scale ${scale}, ${options.candidates} renderings each (samples at temperature ${options.temperature}):\n` +
  `  greedy rendering right          ${pct(counts.greedy)}\n` +
  `  kept by ${options.judge.padEnd(24)}${pct(counts.kept)}  (a sampled rendering kept for ${pct(counts.keptOther)})\n` +
  `  any rendering right (oracle)    ${pct(counts.oracle)}\n` +
  `  p50 of the renderings and the judging per image: ${result.p50Ms} ms\n`,
);
if (options.json !== undefined) await writeFile(options.json, `${JSON.stringify(result, null, 2)}\n`);
