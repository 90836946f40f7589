// The evaluation's plumbing, independent of the trained model: the committed eval set and the items drawn from it,
// the graders on the set's own right answers (an oracle must score 100%), and a run through `dialect batch` on the
// tiny random bundle (every request answered and graded; figures near 0).
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  CI_SAMPLE, type EvalItem, type EvalSet, batchLine, buildItems, comparePaired, formatMarkdown, formatTable, gradeItem,
  loadEvalSet, parseItems, runEvaluation, sampleItems, summarise, TARGETS,
} from '../../src/eval/index.ts';
import {
  applyEdit, constraintsKey, describe as describeScene, gradeAnswer, parsePrompt, sceneKey,
} from '../../src/shapes/index.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const tinyBundle = join(root, 'tests/fixtures/tiny-bundle');

let set: EvalSet;
let items: EvalItem[];
before(async () => {
  set = await loadEvalSet();
  items = buildItems(set);
});

const info = {
  model: 'oracle', evalDir: 'eval/shapes', records: 0, seedStart: 1e9, defaultScale: 2, sample: undefined,
  concurrency: 1, batchSeconds: 0, seconds: 0, outDir: undefined,
};

describe('the committed eval set', () => {
  it('is the writer\'s held-out set: 1000 records from seed 10^9, every image present, small enough to commit', async () => {
    assert.equal(set.records.length, 1000);
    assert.equal(set.manifest.seedStart, 1_000_000_000);
    set.records.forEach((r, i) => assert.equal(r.seed, 1_000_000_000 + i));
    const files = await readdir(join(set.dir, 'images'));
    const referenced = new Set(set.records.flatMap((r) => r.images));
    assert.equal(files.length, referenced.size);
    let bytes = statSync(join(set.dir, 'eval.jsonl')).size;
    for (const f of files) bytes += statSync(join(set.dir, 'images', f)).size;
    assert.ok(bytes < 2_000_000, `eval set is ${bytes} bytes`);
    for (const path of referenced) assert.ok(existsSync(join(set.dir, path)), path);
  });

  it('gives items whose answers agree with the TypeScript language code', () => {
    const count = (s: string) => items.filter((i) => i.set === s).length;
    assert.equal(count('describe'), 1000);
    assert.equal(count('round-trip'), 1000);
    const understandRecords = set.records.filter((r) => r.type === 'understand').length;
    assert.equal(count('question-scales'), 3 * understandRecords);
    assert.equal(count('round-trip-scales'), 3 * understandRecords);
    assert.ok(count('questions') > 500 && count('generate') > 300 && count('edit') > 500,
      `questions ${count('questions')}, generate ${count('generate')}, edit ${count('edit')}`);
    assert.equal(new Set(items.map((i) => i.id)).size, items.length, 'ids are unique');
    for (const item of items) {
      if (item.task === 'understand') {
        assert.ok(gradeAnswer(item.answer, item.answer, item.kind).ok, item.id);
        if (item.kind === 'describe') assert.equal(item.answer, describeScene(item.scene), item.id);
      } else if (item.task === 'edit') {
        const expected = applyEdit(item.source, item.instruction);
        assert.ok(expected, `${item.id}: "${item.instruction}" not understood`);
        assert.equal(sceneKey(expected), sceneKey(item.target), item.id);
      } else if (item.task === 'generate') {
        const parsed = parsePrompt(item.prompt);
        assert.ok(parsed, `${item.id}: "${item.prompt}" not understood`);
        assert.equal(constraintsKey(parsed), constraintsKey(item.constraints), item.id);
      }
    }
  });

  it('samples a fixed, reproducible subset', () => {
    const a = sampleItems(items, CI_SAMPLE);
    const b = sampleItems(buildItems(set), CI_SAMPLE);
    assert.deepEqual(a.map((i) => i.id), b.map((i) => i.id));
    const total = Object.values(CI_SAMPLE).reduce((s, n) => s + (n ?? 0), 0);
    assert.equal(a.length, total);
    const oneObject = a.filter((i) => i.task === 'generate' && i.constraints.objects.length === 1).length;
    assert.equal(oneObject, CI_SAMPLE['generate-1']);
    assert.equal(buildItems(set, { limit: 10 }).every((i) => i.record < 1_000_000_010), true);
  });

  it('asks the scale probe at one view, and every other question as the model or the run reads images', () => {
    type Question = Extract<EvalItem, { task: 'understand' }>;
    const question = items.find((i) => i.set === 'questions' && i.origin === 'record') as Question;
    const probe = items.filter((i): i is Question => i.set === 'question-scales' && i.record === question.record);
    assert.deepEqual(probe.map((i) => i.scale), [1, 2, 3]);
    for (const item of probe) {
      assert.deepEqual(batchLine(item, { understandingScale: 3, views: [2] }), {
        id: item.id, seed: item.seed, scale: item.scale, views: [], task: 'understand', image: item.image, prompt: item.question,
      });
    }
    const plain = batchLine(question);
    assert.equal('scale' in plain || 'views' in plain, false, 'the bundle decides');
    const chosen = batchLine(question, { understandingScale: 3, views: [2], guidance: 2 });
    assert.equal(chosen.scale, 3);
    assert.deepEqual(chosen.views, [2]);
    assert.equal('guidance' in chosen, false, 'guidance is for generations and edits');
  });

  it("edits at the bundle's scale unless the run names one, the input encoded at the edit's scale unless named too", () => {
    const edit = items.find((i) => i.task === 'edit' && i.scale === undefined) as EvalItem;
    const plain = batchLine(edit);
    assert.equal('scale' in plain || 'imageScale' in plain, false, 'the bundle decides');
    const chosen = batchLine(edit, { editScale: 3 });
    assert.deepEqual([chosen.scale, 'imageScale' in chosen], [3, false]);
    const crossed = batchLine(edit, { editScale: 3, editImageScale: 2 });
    assert.deepEqual([crossed.scale, crossed.imageScale], [3, 2]);
    const question = items.find((i) => i.task === 'understand' && i.scale === undefined) as EvalItem;
    assert.equal('scale' in batchLine(question, { editScale: 3 }), false, 'only edits');
  });

  it('sends de-tokenizer guidance with every item that writes an image, and prompt guidance with generations and edits', () => {
    const overrides = { guidance: 2, detokGuidance: 1.5 };
    for (const task of ['generate', 'edit', 'reconstruct', 'understand'] as const) {
      const item = items.find((i) => i.task === task) as EvalItem;
      const line = batchLine(item, overrides);
      assert.equal(line.detokGuidance, task === 'understand' ? undefined : 1.5, task);
      assert.equal(line.guidance, task === 'generate' || task === 'edit' ? 2 : undefined, task);
    }
  });
});

describe('grading', () => {
  it('scores the eval set\'s own right answers 100% on every metric', async () => {
    // Every item of the first 120 records, answered by an oracle: the canonical answer, or the reference rendering.
    const sample = buildItems(set, { limit: 120 });
    const graded = [];
    for (const item of sample) {
      const answer =
        item.task === 'understand' ? { id: item.id, text: item.answer, ms: 1 }
        : item.task === 'reconstruct' ? { id: item.id, image: item.image, ms: 2 }
        : { id: item.id, image: item.reference, ms: 3 };
      graded.push(await gradeItem(item, answer, root));
    }
    const wrong = graded.filter((g) => !g.ok);
    assert.deepEqual(wrong.map((g) => [g.item.id, g.problems]), []);
    const report = summarise(graded, info);
    assert.equal(report.pass, true);
    for (const m of report.metrics) if (m.count > 0) assert.equal(m.value, 1, m.id);
    assert.deepEqual(Object.keys(TARGETS).sort(), report.metrics.filter((m) => m.group === 'headline').map((m) => m.id).sort());
    assert.deepEqual(report.latency.map((l) => [l.task, l.p50]), [['understand', 1], ['generate', 3], ['edit', 3], ['reconstruct', 2]]);
    assert.match(formatTable(report), /understanding: questions answered correctly +\d+ +100\.0% +≥ 95% +pass/);
    assert.match(formatMarkdown(report), /\| \*\*round trip: every attribute kept\*\* \| 120 \| 100\.0% \| ≥ 95% \| pass \|/);
  });

  it('marks wrong answers, missing answers, error lines and the wrong image wrong', async () => {
    const sample = sampleItems(items, { questions: 5, describe: 5, generate: 5, edit: 5, 'round-trip': 5 });
    const graded = [];
    for (const item of sample) {
      const answer =
        item.task === 'understand' ? { id: item.id, text: item.kind === 'exists' ? 'maybe.' : 'a purple hexagon.' }
        // The source image as an edit answer: nothing was edited; as a generation: another scene.
        : item.task === 'edit' ? { id: item.id, image: item.image }
        : item.task === 'generate' ? { id: item.id, error: { code: 'INTERNAL', message: 'boom' } }
        : undefined;
      graded.push(await gradeItem(item, answer, root));
    }
    assert.equal(graded.filter((g) => g.ok).length, 0);
    const edit = graded.find((g) => g.item.task === 'edit');
    assert.equal(edit?.editApplied, false);
    assert.deepEqual(graded.find((g) => g.item.task === 'generate')?.problems, ['INTERNAL: boom']);
    assert.deepEqual(graded.find((g) => g.item.task === 'reconstruct')?.problems, ['no answer']);
    const report = summarise(graded, info);
    assert.equal(report.pass, false);
    assert.ok(report.failures.length === graded.length);
  });
});

describe('a run through dialect batch on the tiny random bundle', () => {
  it('answers and grades every request of the sample (random weights: figures near 0)', async () => {
    const spec = { questions: 3, describe: 2, 'question-scales': 2, 'generate-1': 2, 'generate-multi': 2, edit: 3,
      'round-trip': 2, 'round-trip-scales': 2 };
    const report = await runEvaluation({ model: tinyBundle, sample: spec, concurrency: 8 });
    assert.equal(report.items, 18);
    assert.equal(report.model, tinyBundle);
    assert.equal(report.defaultScale, 2);
    const m = (id: string) => report.metrics.find((x) => x.id === id);
    assert.equal(m('understand.questions')?.count, 3);
    assert.equal(m('understand.describe')?.count, 2);
    assert.equal(m('generate.one-object')?.count, 2);
    assert.equal(m('generate.multi-object')?.count, 2);
    assert.equal(m('edit')?.count, 3);
    assert.equal(m('round-trip')?.count, 2);
    assert.equal(report.understandingScale, 2, 'a bundle without `understanding` reads at its default scale');
    assert.deepEqual(report.views, []);
    assert.equal(report.editScale, 2, 'a bundle without `editing` edits uploads at its default scale');
    assert.equal([1, 2, 3].reduce((n, s) => n + (m(`understand.scale.${s}`)?.count ?? 0), 0), 2);
    assert.equal([1, 2, 3].reduce((n, s) => n + (m(`round-trip.scale.${s}`)?.count ?? 0), 0), 2);
    // Every request came back and was graded (no error lines): wrong answers, not broken plumbing.
    for (const f of report.failures) {
      assert.ok(!f.problems.some((p) => /no answer|INTERNAL|BAD_REQUEST|INVALID|cannot read/.test(p)), `${f.id}: ${f.problems}`);
    }
    assert.deepEqual(report.latency.map((l) => l.task).sort(), ['edit', 'generate', 'reconstruct', 'understand']);
    assert.equal(report.pass, false);
  });

  it('runs only the tasks asked for, with the guidance asked for on every generation and edit, and says so', async () => {
    const outDir = await mkdtemp(join(tmpdir(), 'dialect-eval-guided-'));
    try {
      const spec = { questions: 2, 'generate-1': 2, edit: 2, 'round-trip': 2 };
      const report = await runEvaluation({ model: tinyBundle, sample: spec, tasks: ['generate', 'edit'], guidance: 3, outDir });
      assert.equal(report.items, 4);
      assert.equal(report.guidance, 3);
      const lines = (await readFile(join(outDir, 'requests.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
      assert.deepEqual(lines.map((l) => [l.task, l.guidance]).sort(), [['edit', 3], ['edit', 3], ['generate', 3], ['generate', 3]]);
      // items.jsonl says which headline and breakdown each item counts in, and pairs with itself (eval:compare).
      const text = await readFile(join(outDir, 'items.jsonl'), 'utf8');
      for (const l of text.trim().split('\n').map((x) => JSON.parse(x))) {
        if (l.task === 'generate') {
          assert.match(l.detail, /^[123] objects$/);
          assert.equal(l.headline, l.detail === '1 objects' ? 'generate.one-object' : 'generate.multi-object');
        } else {
          assert.equal(l.headline, 'edit');
          assert.ok(['recolor', 'move', 'remove', 'add', 'background', 'resize'].includes(l.detail), l.detail);
        }
      }
      const graded = parseItems(text, 'items.jsonl');
      const self = comparePaired(graded, graded, true);
      assert.equal(self.unpaired, 0);
      assert.equal(self.rows.filter((r) => !r.group.includes(' · ')).reduce((n, r) => n + r.count, 0), 4);
      assert.ok(self.rows.every((r) => r.onlyA === 0 && r.onlyB === 0 && r.difference === 0 && r.standardError === 0));
    } finally {
      await rm(outDir, { recursive: true, force: true });
    }
  });

  it('fails loudly without a bundle', async () => {
    await assert.rejects(
      runEvaluation({ model: join(root, 'models/no-such-bundle'), sample: { questions: 1 } }),
      /no model bundle/,
    );
  });
});
