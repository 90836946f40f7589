// npm run eval:describe-failures -- DIR [--eval EVAL_DIR]
//
// Sorts the wrong "Describe the image." answers of an evaluation kept with `npm run eval:model -- --out DIR`
// (DIR/items.jsonl: every graded item with the model's answer) by cause (src/eval/describe-failures.ts), against the
// scenes of the eval set it ran on (default eval/shapes).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_EVAL_DIR, buildItems, classifyDescribeFailure, loadEvalSet } from '../src/eval/index.ts';
import type { Scene } from '../src/shapes/index.ts';

interface KeptItem {
  id: string;
  set: string;
  ok: boolean;
  answer?: string;
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { eval: { type: 'string' } } });
  const dir = positionals[0];
  if (dir === undefined) {
    console.error('usage: npm run eval:describe-failures -- DIR [--eval EVAL_DIR]   (DIR from npm run eval:model -- --out DIR)');
    return 2;
  }
  const itemsFile = join(dir, 'items.jsonl');
  if (!existsSync(itemsFile)) {
    console.error(`${itemsFile} does not exist: keep an evaluation with npm run eval:model -- --out ${dir}`);
    return 2;
  }
  const scenes = new Map<string, Scene>();
  for (const item of buildItems(await loadEvalSet(values.eval ?? DEFAULT_EVAL_DIR))) {
    if (item.set === 'describe' && item.task === 'understand') scenes.set(item.id, item.scene);
  }
  const described = readFileSync(itemsFile, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as KeptItem)
    .filter((item) => item.set === 'describe');
  const kinds = new Map<string, number>();
  let wrong = 0;
  let repeats = 0;
  for (const item of described) {
    const scene = scenes.get(item.id);
    if (scene === undefined) throw new Error(`${item.id} is not an item of the eval set; pass the set it ran on (--eval)`);
    const failure = classifyDescribeFailure(item.answer ?? '', scene);
    if (item.ok !== (failure === null)) console.error(`warning: ${item.id}: the grader and this sorting disagree`);
    if (failure === null) continue;
    wrong += 1;
    kinds.set(failure.kind, (kinds.get(failure.kind) ?? 0) + 1);
    if (failure.repeats) repeats += 1;
  }
  console.log(`"Describe the image.": ${wrong} of ${described.length} wrong`);
  for (const [kind, count] of [...kinds].sort((a, b) => b[1] - a[1])) console.log(`  ${kind.padEnd(42)} ${count}`);
  console.log(`  a wrong object repeats another object of the scene: ${repeats}`);
  return 0;
}

process.exitCode = await main();
