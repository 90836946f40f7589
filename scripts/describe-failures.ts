// npm run eval:describe-failures -- DIR
//
// Sorts the wrong "Describe the image." answers of an evaluation kept with `npm run eval:model -- --out DIR`
// (DIR/items.jsonl) by what went wrong, to say which lesson the model lacks: the background, the number of objects,
// the cells they sit in, or (cells right) the attributes of some objects — and among those, how often a wrong object
// repeats another object of the same scene (the answer copies an earlier object's words instead of binding the
// attributes of this one). The grader's problem line is "describe: got BG: OBJ @ CELL; …, want BG: OBJ @ CELL; …";
// an answer it could not read as a scene at all (seen: two objects named in one cell) has another line.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

interface GradedItem {
  set: string;
  ok: boolean;
  problems: string[];
}

interface Scene {
  background: string;
  /** cell → "size colour shape" */
  objects: Map<string, string>;
}

function parseScene(text: string): Scene | undefined {
  const colon = text.indexOf(': ');
  if (colon < 0) return undefined;
  const objects = new Map<string, string>();
  for (const part of text.slice(colon + 2).split('; ')) {
    const at = part.lastIndexOf(' @ ');
    if (at < 0) return undefined;
    objects.set(part.slice(at + 3), part.slice(0, at));
  }
  return { background: text.slice(0, colon), objects };
}

/** The kind of one wrong description, and whether a wrong object repeats another object of the scene. */
export function classifyDescribeFailure(problem: string): { kind: string; repeats: boolean } {
  const match = /^describe: got (.*), want (.*)$/.exec(problem);
  const got = match ? parseScene(match[1] as string) : undefined;
  const want = match ? parseScene(match[2] as string) : undefined;
  if (!got || !want) return { kind: 'not a scene (e.g. two objects in one cell)', repeats: false };
  if (got.objects.size !== want.objects.size) return { kind: 'wrong number of objects', repeats: false };
  const cellsRight = [...want.objects.keys()].every((cell) => got.objects.has(cell));
  if (!cellsRight) return { kind: 'objects in wrong cells', repeats: false };
  const wrong = [...want.objects].filter(([cell, object]) => got.objects.get(cell) !== object);
  if (wrong.length === 0) return { kind: 'background only', repeats: false };
  const others = new Set(want.objects.values());
  const repeats = wrong.some(([cell]) => others.has(got.objects.get(cell) as string));
  return { kind: `cells right, ${wrong.length} object(s) wrong`, repeats };
}

function main(dir: string | undefined): void {
  if (!dir) {
    console.error('usage: npm run eval:describe-failures -- DIR   (DIR from npm run eval:model -- --out DIR)');
    process.exit(2);
  }
  const items = readFileSync(join(dir, 'items.jsonl'), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as GradedItem)
    .filter((item) => item.set === 'describe');
  const wrong = items.filter((item) => !item.ok);
  const kinds = new Map<string, number>();
  let repeats = 0;
  for (const item of wrong) {
    const { kind, repeats: repeated } = classifyDescribeFailure(item.problems[0] ?? '');
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    if (repeated) repeats += 1;
  }
  console.log(`"Describe the image.": ${wrong.length} of ${items.length} wrong`);
  for (const [kind, count] of [...kinds].sort((a, b) => b[1] - a[1])) console.log(`  ${kind.padEnd(42)} ${count}`);
  console.log(`  a wrong object repeats another object of the scene: ${repeats}`);
}

if (import.meta.url === `file://${process.argv[1]}`) main(process.argv[2]);
