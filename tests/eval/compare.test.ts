// The paired comparison of two evaluations (src/eval/compare.ts, `npm run eval:compare`).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { comparePaired, formatComparison, type ItemOutcome, parseItems } from '../../src/eval/index.ts';

const item = (id: string, ok: boolean, headline?: string, detail?: string): ItemOutcome => ({
  id, ok, ...(headline === undefined ? {} : { headline }), ...(detail === undefined ? {} : { detail }),
});

describe('comparePaired', () => {
  // Ten edits: both right on 4, only A on 1, only B on 3, neither on 2.
  const pattern = [[1, 1], [1, 1], [1, 1], [1, 1], [1, 0], [0, 1], [0, 1], [0, 1], [0, 0], [0, 0]];
  const a = pattern.map(([x], i) => item(`e${i}`, x === 1, 'edit', i % 2 === 0 ? 'move' : 'recolor'));
  const b = pattern.map(([, y], i) => item(`e${i}`, y === 1, 'edit', i % 2 === 0 ? 'move' : 'recolor'));

  it('counts the items each run gets right alone and the paired difference with its standard error', () => {
    const { rows, unpaired } = comparePaired(a, b);
    assert.equal(unpaired, 0);
    assert.equal(rows.length, 1);
    const row = rows[0]!;
    assert.deepEqual([row.group, row.count, row.rightA, row.rightB, row.onlyA, row.onlyB], ['edit', 10, 5, 7, 1, 3]);
    assert.ok(Math.abs(row.difference - 0.2) < 1e-12);
    // Per-item differences: one −1, three +1, six 0 → variance 4/10 − 0.2² = 0.36, SE = √(0.36 / 10).
    assert.ok(Math.abs(row.standardError - Math.sqrt(0.036)) < 1e-12);
  });

  it('pairs by id, whatever the order, and counts the items of one run only', () => {
    const extra = [...b.slice().reverse(), item('q9', true, 'understand.questions', 'where')];
    const { rows, unpaired } = comparePaired(a, extra);
    assert.equal(unpaired, 1);
    assert.deepEqual(rows.map((r) => [r.group, r.onlyA, r.onlyB]), [['edit', 1, 3]]);
  });

  it('orders headlines as the issue does and adds breakdown rows on request', () => {
    const q = [item('q1', true, 'understand.questions', 'where'), item('q2', false, 'understand.questions', 'color')];
    const probe = [item('q1-s1', true, undefined, 'where')];
    const { rows } = comparePaired([...a, ...q, ...probe], [...b, ...q, ...probe], true);
    assert.deepEqual(rows.map((r) => r.group), [
      'understand.questions', 'understand.questions · color', 'understand.questions · where',
      'edit', 'edit · move', 'edit · recolor',
    ]);
    const move = rows.find((r) => r.group === 'edit · move')!;
    assert.deepEqual([move.count, move.onlyA, move.onlyB], [5, 1, 1]);
  });

  it('formats a Markdown table with signed differences', () => {
    const table = formatComparison(comparePaired(a, b), '1.4.2', '1.5.0');
    assert.match(table, /\| edit \| 10 \| 50\.0% \| 70\.0% \| 1 \/ 3 \| \+20\.0 ± 19\.0 \|/);
  });
});

describe('parseItems', () => {
  it('reads items.jsonl lines and skips blank ones', () => {
    const text = '{"id":"e1","ok":true,"set":"edit","headline":"edit","detail":"move"}\n\n{"id":"r1-s1","ok":false,"set":"round-trip-scales"}\n';
    assert.deepEqual(parseItems(text, 'x'), [item('e1', true, 'edit', 'move'), item('r1-s1', false)]);
  });

  it('refuses lines that are not items, and items of an eval:model too old to say their headline', () => {
    assert.throws(() => parseItems('{"id":"e1"}\n', 'f.jsonl'), /f\.jsonl:1: not an evaluation item/);
    assert.throws(() => parseItems('{"id":"e1","ok":true,"set":"edit"}\n', 'f.jsonl'), /older eval:model/);
    assert.throws(() => parseItems('{"id":"d1","ok":true,"set":"describe"}\n', 'f.jsonl'), /older eval:model/);
  });
});
