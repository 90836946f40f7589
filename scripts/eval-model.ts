// npm run eval:model [-- --model DIR] [--limit N] [--out DIR] [--json PATH] [--quick] [--markdown] [--guidance G]
//
// Evaluates a model bundle (default: the shipped models/tar-shapes) on the held-out eval set (eval/shapes) through
// `dialect batch`, grades every answer with src/shapes, prints the table and writes the report as JSON
// (bench/results/eval.json unless --json). Exit code 0 when every headline metric meets its target, 1 otherwise,
// 2 on a usage error. See docs/model-card.md, "Quality".
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseOptionalNumber } from '../src/cli/model-options.ts';
import { MAX_GUIDANCE } from '../src/cli/requests.ts';
import { CI_SAMPLE, formatMarkdown, formatTable, runEvaluation } from '../src/eval/index.ts';

const USAGE = `usage: npm run eval:model -- [--model DIR] [--eval DIR] [--limit N] [--quick] [--out DIR] [--json PATH]
                                [--concurrency N] [--threads N] [--markdown] [--guidance G] [--self-check]

  --model DIR        model bundle (default models/tar-shapes)
  --eval DIR         eval set (default eval/shapes)
  --limit N          only the first N records of the eval set
  --quick            only the fixed sample of the CI test (tests/eval/model-quality.test.ts)
  --out DIR          keep the batch file, the images and items.jsonl (every graded item) in DIR
  --json PATH        the report (default bench/results/eval.json)
  --concurrency N    dialect batch --concurrency (default 16)
  --threads N        dialect batch --threads
  --markdown         also print the table as Markdown
  --guidance G       prompt guidance of generations and edits (default: the bundle's sampling.image.cfgScale);
                     choose it on a tuning set, not on this held-out one (npm run bench:guidance)
  --self-check       every generation and edit asks the model to check its image (off by default, as in the product)
`;

const root = fileURLToPath(new URL('../', import.meta.url));

function integer(flag: string, text: string | undefined, min: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < min) throw new Error(`${flag} must be an integer ≥ ${min}, not "${text}"`);
  return Number(text);
}

async function main(): Promise<number> {
  let values;
  let limit: number | undefined;
  let concurrency: number | undefined;
  let threads: number | undefined;
  let guidance: number | undefined;
  try {
    ({ values } = parseArgs({
      options: {
        model: { type: 'string' },
        eval: { type: 'string' },
        limit: { type: 'string' },
        quick: { type: 'boolean' },
        out: { type: 'string' },
        json: { type: 'string' },
        concurrency: { type: 'string' },
        threads: { type: 'string' },
        markdown: { type: 'boolean' },
        guidance: { type: 'string' },
        'self-check': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
    limit = integer('--limit', values.limit, 1);
    concurrency = integer('--concurrency', values.concurrency, 1);
    threads = integer('--threads', values.threads, 1);
    // The batch line's bound (dialect batch checks it again per line).
    guidance = parseOptionalNumber('--guidance', values.guidance, 0, MAX_GUIDANCE);
  } catch (error) {
    process.stderr.write(`eval:model: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const report = await runEvaluation({
    ...(values.model === undefined ? {} : { model: values.model }),
    ...(values.eval === undefined ? {} : { evalDir: values.eval }),
    ...(limit === undefined ? {} : { limit }),
    ...(values.quick ? { sample: CI_SAMPLE } : {}),
    ...(values.out === undefined ? {} : { outDir: values.out }),
    ...(concurrency === undefined ? {} : { concurrency }),
    ...(threads === undefined ? {} : { threads }),
    ...(guidance === undefined ? {} : { guidance }),
    ...(values['self-check'] === true ? { selfCheck: true } : {}),
    onLog: (line) => process.stderr.write(`dialect batch: ${line}\n`),
  });
  const jsonPath = resolve(values.json ?? resolve(root, 'bench/results/eval.json'));
  await mkdir(dirname(jsonPath), { recursive: true });
  await writeFile(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(
    `model ${report.model}\neval set ${report.evalSet.dir}: ${report.evalSet.records} records from seed ` +
      `${report.evalSet.seedStart}${report.sample ? ' (fixed CI sample)' : ''}` +
      `${report.guidance === undefined ? '' : `, prompt guidance ${report.guidance} (not the bundle's default)`}` +
      `${report.selfCheck === true ? ', generations and edits self-checked' : ''}; ${report.items} requests, ` +
      `batch ${report.batchSeconds.toFixed(1)} s, total ${report.seconds.toFixed(1)} s\n\n${formatTable(report)}\n\n`,
  );
  if (values.markdown) process.stdout.write(`${formatMarkdown(report)}\n\n`);
  process.stdout.write(`${report.pass ? 'PASS: every headline metric meets its target' : 'FAIL: not every headline metric meets its target'}; report in ${jsonPath}` +
    `${report.outDir ? `, items in ${report.outDir}/items.jsonl` : ''}\n`);
  return report.pass ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`eval:model: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
