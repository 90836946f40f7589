// The sorting of wrong "Describe the image." answers (src/eval/describe-failures.ts): answers written by the shapes
// world's own `describe`, so that they read as the model's canonical answers do.
import assert from 'node:assert/strict';
import { describe as suite, it } from 'node:test';
import { NOT_A_SCENE, classifyDescribeFailure } from '../../src/eval/index.ts';
import { type Scene, type ShapeObject, describe } from '../../src/shapes/index.ts';

const circle: ShapeObject = { shape: 'circle', color: 'red', size: 'small', position: 'center' };
const greenTriangle: ShapeObject = { shape: 'triangle', color: 'green', size: 'large', position: 'bottom left' };
const orangeTriangle: ShapeObject = { shape: 'triangle', color: 'orange', size: 'large', position: 'bottom right' };
const scene: Scene = { background: 'white', objects: [circle, greenTriangle, orangeTriangle] };
const answer = (objects: ShapeObject[], background: Scene['background'] = 'white') => describe({ background, objects });

suite('classifyDescribeFailure', () => {
  it('passes a right description', () => {
    assert.equal(classifyDescribeFailure(describe(scene), scene), null);
  });

  it('finds a wrong object that repeats another object of the scene', () => {
    const got = answer([circle, { ...circle, position: 'bottom left' }, orangeTriangle]);
    assert.deepEqual(classifyDescribeFailure(got, scene), { kind: 'cells right, 1 object(s) wrong', repeats: true });
  });

  it('tells a wrong object that repeats nothing, wrong cells, a wrong count and a wrong background apart', () => {
    const recoloured = answer([circle, { ...greenTriangle, color: 'blue' }, orangeTriangle]);
    assert.deepEqual(classifyDescribeFailure(recoloured, scene), { kind: 'cells right, 1 object(s) wrong', repeats: false });
    const moved = answer([{ ...circle, position: 'top' }, greenTriangle, orangeTriangle]);
    assert.deepEqual(classifyDescribeFailure(moved, scene), { kind: 'objects in wrong cells', repeats: false });
    assert.deepEqual(classifyDescribeFailure(answer([circle, greenTriangle]), scene), { kind: 'wrong number of objects', repeats: false });
    assert.deepEqual(classifyDescribeFailure(answer(scene.objects, 'gray'), scene), { kind: 'background only', repeats: false });
  });

  it('calls an answer that names two objects in one cell, or no scene at all, not a scene', () => {
    const twoInOneCell = 'a small red circle in the center and a large green triangle in the center on a white background.';
    assert.deepEqual(classifyDescribeFailure(twoInOneCell, scene), { kind: NOT_A_SCENE, repeats: false });
    assert.deepEqual(classifyDescribeFailure('a red circle', scene), { kind: NOT_A_SCENE, repeats: false });
  });
});
