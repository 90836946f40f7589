// The TS language module reads what the Python one writes: canonical descriptions, generation prompts (full and
// partial, paraphrased), question answers and edit instructions (tests/fixtures/shapes/*.json).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type Constraints, type QuestionKind, applyEdit, constraintsKey, describe, inferKind, parseDescription, parseEdit,
  parsePrompt, reference,
} from '../../src/shapes/language.ts';
import { type Scene, parseScene, sceneKey } from '../../src/shapes/scene.ts';
import { loadFixtureScenes, readJson } from './fixtures.ts';

test('describe() writes the Python canonical description, and parseDescription() reads it back', async () => {
  for (const item of await loadFixtureScenes()) {
    assert.equal(describe(item.scene), item.description);
    const parsed = parseDescription(item.description);
    assert.ok(parsed, item.description);
    assert.equal(sceneKey(parsed), sceneKey(item.scene));
  }
});

test('parseDescription() accepts "draw ..." variants and refuses partial or broken descriptions', () => {
  const want = 'white: small blue square @ top left; large red circle @ center';
  for (const text of [
    'a small blue square at the top left and a large red circle in the center on a white background.',
    'Draw a small blue square in the top left corner and a large red circle in the middle on a white background',
    'please generate an image of a small blue square at the upper left, and a large red circle at the center, on a white background!',
    'A large red circle in the centre and a small blue square at the top left on a white background.',
  ]) {
    const s = parseDescription(text);
    assert.ok(s, text);
    assert.equal(sceneKey(s), want, text);
  }
  for (const text of [
    'a small blue square at the top left',                                  // no background
    'a blue square at the top left on a white background',                 // no size
    'a small blue square at the top left and a large red circle at the top left on a white background', // one cell
    'a small pink square at the top left on a white background',            // unknown colour
    'hello there',
  ]) assert.equal(parseDescription(text), null, text);
});

test('parsePrompt() recovers the constraints of every Python generation prompt', () => {
  const { prompts } = readJson<{ prompts: { prompt: string; canonical_prompt: string; full: boolean; constraints: Constraints }[] }>('language.json');
  assert.ok(prompts.length >= 200);
  for (const p of prompts) {
    for (const text of [p.prompt, p.canonical_prompt]) {
      const c = parsePrompt(text);
      assert.ok(c, text);
      assert.equal(constraintsKey(c), constraintsKey(p.constraints), text);
    }
    if (p.full) assert.ok(parseDescription(p.canonical_prompt), p.canonical_prompt);
  }
});

test('parsePrompt() reads the partial prompts of the product issue', () => {
  const cases: [string, string][] = [
    ['a red circle', '*: red circle'],
    ['a large triangle on a black background', 'black: large triangle'],
    ['two green squares', '*: green square; green square'],
    ['Draw an orange shape in the top right corner.', '*: orange shape @ top right'],
    ['three shapes on a grey background', 'gray: shape; shape; shape'],
  ];
  for (const [text, key] of cases) assert.equal(constraintsKey(parsePrompt(text)!), key, text);
  assert.equal(parsePrompt('four red circles'), null);
  assert.equal(parsePrompt('two red circles and two blue squares'), null);  // 4 objects
  assert.equal(parsePrompt('something nice'), null);
});

test('every Python canonical answer has a recognisable kind', () => {
  const { questions } = readJson<{ questions: { kind: QuestionKind; answer: string; scene: unknown }[] }>('language.json');
  for (const q of questions) assert.equal(inferKind(q.answer), q.kind, q.answer);
});

test('applyEdit() computes the Python target scene of every instruction, canonical and paraphrased', () => {
  const { edits } = readJson<{ edits: { scene: unknown; op: string; instruction: string; canonical_instruction: string; target: unknown }[] }>('language.json');
  assert.ok(edits.length >= 200);
  for (const e of edits) {
    const scene = parseScene(e.scene);
    const target = parseScene(e.target);
    for (const text of [e.instruction, e.canonical_instruction]) {
      const got = applyEdit(scene, text);
      assert.ok(got, `${text} on ${sceneKey(scene)}`);
      assert.equal(sceneKey(got), sceneKey(target), text);
      assert.equal(parseEdit(scene, text)!.op, e.op, text);
    }
  }
});

test('applyEdit() refuses ambiguous, impossible and no-op edits', () => {
  const scene: Scene = {
    background: 'white',
    objects: [
      { shape: 'circle', color: 'red', size: 'small', position: 'top left' },
      { shape: 'circle', color: 'blue', size: 'large', position: 'center' },
      { shape: 'square', color: 'red', size: 'small', position: 'bottom right' },
    ],
  };
  assert.equal(reference(scene, scene.objects[0]!), 'red circle');
  assert.equal(reference(scene, scene.objects[2]!), 'square');
  for (const text of [
    'make the circle green',                    // two circles
    'move the square to the center',            // cell taken
    'make the square red',                      // already red
    'make the square small',                    // already small
    'add a small red circle at the top',        // would be 4 objects
    'change the background to white',           // already white
    'remove the triangle',                      // no triangle
    'sing a song',
  ]) assert.equal(applyEdit(scene, text), null, text);
  assert.equal(sceneKey(applyEdit(scene, 'make the red circle green')!),
    'white: small green circle @ top left; large blue circle @ center; small red square @ bottom right');
  assert.equal(sceneKey(applyEdit(scene, 'move the square to the top')!),
    'white: small red circle @ top left; small red square @ top; large blue circle @ center');
  const one: Scene = { background: 'black', objects: [{ shape: 'triangle', color: 'cyan', size: 'large', position: 'left' }] };
  assert.equal(applyEdit(one, 'remove the triangle'), null);  // at least one object remains
});
