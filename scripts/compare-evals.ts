// npm run eval:compare -- DIR_A DIR_B [--details] [--names A,B]
//
// Compares two evaluations of the same eval set item by item: each DIR is an `npm run eval:model -- --out DIR` folder
// (its items.jsonl). Prints, per headline metric (and with --details per question kind, edit op, object count), both
// rates, the items right in one run only, and the paired difference B − A with its standard error
// (src/eval/compare.ts). Exit code 2 on a usage error.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { comparePaired, formatComparison, parseItems } from '../src/eval/index.ts';

const USAGE = 'usage: npm run eval:compare -- DIR_A DIR_B [--details] [--names A,B]';

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: { details: { type: 'boolean', default: false }, names: { type: 'string' } },
    });
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const { positionals, values } = parsed;
  const [dirA, dirB] = positionals;
  if (positionals.length !== 2 || dirA === undefined || dirB === undefined) {
    console.error(USAGE);
    return 2;
  }
  const names = values.names?.split(',') ?? ['A', 'B'];
  if (names.length !== 2) {
    console.error(`--names takes two names separated by a comma\n${USAGE}`);
    return 2;
  }
  const read = async (dir: string) => {
    const file = join(dir, 'items.jsonl');
    return parseItems(await readFile(file, 'utf8'), file);
  };
  const comparison = comparePaired(await read(dirA), await read(dirB), values.details);
  console.log(`A = ${dirA}\nB = ${dirB}\n`);
  console.log(formatComparison(comparison, names[0] as string, names[1] as string));
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`eval:compare: ${(error as Error).message}`);
    process.exit(1);
  },
);
