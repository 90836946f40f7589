// npm run bench:detok-reencode -- --eval DIR [--model DIR] [--limit N] [--candidates N] [--temperature T]
//                                  [--scale S] [--json PATH]
//
// An experiment, not a product setting: would a de-tokenizer that checks its own pixels keep more of an image's round
// trip? For each round-trip image of a TUNING set it encodes the image at `--scale`, renders the tokens N times
// (the bundle's greedy de-tokenizer, then N − 1 samples of the AR-DTok's VQ codes at `--temperature`), re-encodes
// every rendering at the same scale and keeps the one whose tokens agree with the image's at the most positions
// (the greedy one on ties). It prints the round trip (src/shapes' gradeRoundTrip) of the greedy rendering, of the
// one kept, and of an oracle that keeps any right rendering (what a perfect check could reach with these
// candidates), with each image's time for the N renderings and re-encodings. Only public TarModel calls
// (encodeImage, renderImage), so it measures any bundle:
//
//   training/py -m shapes.dataset eval --out /tmp/tune --count 2000 --seed-start 1500000000
//   npm run bench:detok-reencode -- --eval /tmp/tune --limit 300 --candidates 4
import { readFile, writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { parseOptionalInteger } from '../src/cli/model-options.ts';
import { buildItems, loadEvalSet } from '../src/eval/index.ts';
import { TarModel } from '../src/model/index.ts';
import { decodeImage, gradeRoundTrip } from '../src/shapes/index.ts';
import { CANDIDATE_OPTIONS, parseCandidateOptions, parseOrExit } from './tuning.ts';

const USAGE = `usage: npm run bench:detok-reencode -- --eval DIR [--model DIR] [--limit N] [--candidates N] [--temperature T]
                                        [--scale S] [--json PATH]`;

function parse() {
  const { values } = parseArgs({ options: { ...CANDIDATE_OPTIONS, scale: { type: 'string' }, json: { type: 'string' } } });
  // Eight renderings of a guided de-tokenizer are 16 rows: one batch of the runtime's default size.
  const common = parseCandidateOptions(values, { candidates: 4, maxCandidates: 8, temperature: 0.7 });
  return {
    ...common,
    limit: common.limit ?? 300,
    scale: parseOptionalInteger('--scale', values.scale, 1, 64),
    json: values.json,
  };
}

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
    const image = await model.encodeImage(await readFile(item.image), scale);
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
    const scores: number[] = [];
    for (const rendering of renderings) scores.push(agreement((await model.encodeImage(rendering.png, scale)).tokens, image.tokens));
    milliseconds.push(performance.now() - start);
    const kept = scores.indexOf(Math.max(...scores));
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
  temperature: options.temperature, greedy: counts.greedy / n, kept: counts.kept / n, oracle: counts.oracle / n,
  keptOther: counts.keptOther / n, p50Ms: Math.round(p50),
};
process.stdout.write(
  `${n} round trips at scale ${scale}, ${options.candidates} renderings each (samples at temperature ${options.temperature}):\n` +
  `  greedy rendering right          ${pct(counts.greedy)}\n` +
  `  best re-encoding agreement      ${pct(counts.kept)}  (a sampled rendering kept for ${pct(counts.keptOther)})\n` +
  `  any rendering right (oracle)    ${pct(counts.oracle)}\n` +
  `  p50 of the renderings + re-encodings per image: ${result.p50Ms} ms\n`,
);
if (options.json !== undefined) await writeFile(options.json, `${JSON.stringify(result, null, 2)}\n`);
