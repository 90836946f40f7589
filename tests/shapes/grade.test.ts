// Graders accept right answers, images and edits, and reject wrong ones.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gradeAnswer, gradeEdit, gradeEditInstruction, gradeGeneration, gradeRoundTrip } from '../../src/shapes/grade.ts';
import type { Constraints, QuestionKind } from '../../src/shapes/language.ts';
import { type Scene, parseScene } from '../../src/shapes/scene.ts';
import { addNoise, boxBlur, loadEditFixtures, loadFixtureScenes, readJson } from './fixtures.ts';

test('gradeAnswer accepts the canonical answer and its plain variants', () => {
  const ok: [string, string, QuestionKind?][] = [
    ['red.', 'red.'], ['Red', 'red.'], ['It is red.', 'red.', 'color'],
    ['a circle.', 'a circle.'], ['circle', 'a circle.'], ['two.', 'two.'], ['2', 'two.'], ['There are two shapes.', 'two.'],
    ['at the top left.', 'at the top left.'], ['In the top left corner.', 'at the top left.'], ['top left', 'at the top left.'],
    ['gray.', 'gray.'], ['Grey', 'gray.'], ['yes.', 'yes.'], ['Yes, there is.', 'yes.'], ['no', 'no.'],
    ['a large red circle in the center and a small blue square at the top left on a white background.',
      'a small blue square at the top left and a large red circle in the center on a white background.'],
  ];
  for (const [answer, expected, kind] of ok) {
    const g = gradeAnswer(answer, expected, kind);
    assert.ok(g.ok, `${answer} vs ${expected}: ${g.problems.join('; ')}`);
  }
  assert.ok(gradeAnswer('Red.', 'red.').exact);
  assert.ok(!gradeAnswer('It is red.', 'red.').exact);
});

test('gradeAnswer rejects wrong answers', () => {
  const bad: [string, string][] = [
    ['blue.', 'red.'], ['a square.', 'a circle.'], ['three.', 'two.'], ['3', 'two.'], ['at the top.', 'at the top left.'],
    ['on the left.', 'on the right.'], ['white.', 'gray.'], ['no.', 'yes.'], ['', 'yes.'], ['red or blue', 'red.'],
    ['a small blue square at the top left on a white background.',
      'a small blue square at the top left and a large red circle in the center on a white background.'],
    ['a small blue square at the top left and a small red circle in the center on a white background.',
      'a small blue square at the top left and a large red circle in the center on a white background.'],
    ['a small blue square at the top left and a large red circle in the center on a black background.',
      'a small blue square at the top left and a large red circle in the center on a white background.'],
  ];
  for (const [answer, expected] of bad) assert.ok(!gradeAnswer(answer, expected).ok, `${answer} should not pass as ${expected}`);
});

test('gradeAnswer on every Python question: the right answer passes, another scene\'s answer of that kind mostly fails', () => {
  const { questions } = readJson<{ questions: { kind: QuestionKind; answer: string }[] }>('language.json');
  let rejected = 0, differing = 0;
  questions.forEach((q, i) => {
    assert.ok(gradeAnswer(q.answer, q.answer, q.kind).ok);
    const other = questions.slice(i + 1).concat(questions.slice(0, i)).find((o) => o.kind === q.kind && o.answer !== q.answer);
    if (!other) return;
    differing++;
    if (!gradeAnswer(other.answer, q.answer, q.kind).ok) rejected++;
  });
  assert.equal(rejected, differing);
});

test('gradeGeneration: fixture images meet their full description and partial constraints, not others', async () => {
  const items = await loadFixtureScenes();
  for (const item of items.slice(0, 60)) {
    const g = gradeGeneration(item.image, item.description);
    assert.ok(g.ok, `${item.description}: ${g.problems.join('; ')}`);
    const o = item.scene.objects[0]!;
    const n = item.scene.objects.length;
    const partial: Constraints = {
      background: null,
      objects: item.scene.objects.map((x, k) => (k === 0 ? { shape: o.shape, color: o.color, size: null, position: null }
        : { shape: null, color: null, size: null, position: null })),
    };
    assert.ok(gradeGeneration(item.image, partial).ok);
    // Wrong: another colour, another background, another count.
    const otherColor = (['red', 'blue', 'green'] as const).find((c) => !item.scene.objects.some((x) => x.shape === o.shape && x.color === c))!;
    assert.ok(!gradeGeneration(item.image, { ...partial, objects: [{ ...partial.objects[0]!, color: otherColor }, ...partial.objects.slice(1)] }).ok);
    assert.ok(!gradeGeneration(item.image, { ...partial, background: item.scene.background === 'white' ? 'black' : 'white' }).ok);
    assert.ok(!gradeGeneration(item.image, { ...partial, objects: n < 3 ? [...partial.objects, partial.objects[0]!] : partial.objects.slice(1) }).ok);
  }
  assert.ok(gradeGeneration(items[0]!.image, 'a picture of ' + items[0]!.description).ok);
  assert.ok(!gradeGeneration(items[0]!.image, 'nonsense').ok);
});

test('gradeEdit: the Python target passes, the unedited source fails, and the grade says which part failed', async () => {
  const edits = await loadEditFixtures();
  assert.ok(edits.length >= 50);
  const ops = new Set<string>();
  for (const e of edits) {
    ops.add(e.op);
    const good = gradeEdit(e.targetImage, e.target, e.scene);
    assert.ok(good.ok && good.editApplied && good.othersKept, `${e.canonical_instruction}: ${good.problems.join('; ')}`);
    assert.ok(gradeEditInstruction(boxBlur(addNoise(e.targetImage, 6, e.seed), 1), e.scene, e.canonical_instruction).ok, e.canonical_instruction);
    const unchanged = gradeEdit(e.sourceImage, e.target, e.scene);
    assert.ok(!unchanged.ok && !unchanged.editApplied && unchanged.othersKept, `${e.canonical_instruction} (source image)`);
  }
  assert.equal(ops.size, 6);
});

test('gradeEdit: an edit that also changes another object fails othersKept', async () => {
  const e = (await loadEditFixtures()).find((x) => x.op === 'recolor' && x.scene.objects.length >= 2)!;
  // Pretend the expected result additionally recoloured an untouched object: the real target lacks that change.
  const untouched = e.target.objects.find((o) => e.scene.objects.some((s) => s.position === o.position && s.color === o.color && s.shape === o.shape && s.size === o.size))!;
  const wrongSource: Scene = { ...e.scene, objects: e.scene.objects.map((o) => (o.position === untouched.position ? { ...o, color: o.color === 'red' ? 'green' : 'red' } : o)) };
  const wrongTarget: Scene = { ...e.target, objects: e.target.objects.map((o) => (o.position === untouched.position ? { ...o, color: o.color === 'red' ? 'green' : 'red' } : o)) };
  const g = gradeEdit(e.targetImage, wrongTarget, wrongSource);
  assert.ok(!g.ok);
  assert.ok(g.editApplied);
  assert.ok(!g.othersKept);
});

test('gradeRoundTrip keeps every attribute of the fixtures and counts what a wrong scene loses', async () => {
  const items = await loadFixtureScenes();
  for (const item of items) {
    const g = gradeRoundTrip(item.image, item.scene);
    assert.ok(g.ok, g.problems.join('; '));
    assert.equal(g.kept, g.attributes);
  }
  const item = items.find((it) => it.scene.objects.length === 2)!;
  const o = item.scene.objects[1]!;
  const wrong = parseScene({ ...item.scene, objects: [item.scene.objects[0], { ...o, size: o.size === 'small' ? 'large' : 'small' }] });
  const g = gradeRoundTrip(item.image, wrong);
  assert.ok(!g.ok);
  assert.equal(g.attributes - g.kept, 1);
});
