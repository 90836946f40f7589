/** The shapes world's judge of a model's self-check (src/shapes/judge.ts), on descriptions written by src/shapes. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { judgeShapes, judges } from '../../src/shapes/judge.ts';
import { describe as describeScene } from '../../src/shapes/language.ts';
import type { Scene } from '../../src/shapes/scene.ts';

const scene: Scene = {
  background: 'white',
  objects: [
    { shape: 'circle', color: 'red', size: 'large', position: 'center' },
    { shape: 'square', color: 'blue', size: 'small', position: 'top left' },
  ],
};
const said = describeScene(scene);

describe('judgeShapes', () => {
  it('is what a bundle names "shapes"', () => {
    assert.equal(judges.shapes, judgeShapes);
  });

  it('passes a generation whose reading has every attribute and the object count the prompt asks for, and only then', () => {
    assert.equal(judgeShapes({ task: 'generate', prompt: 'a blue square and a red circle' }, said), true);
    assert.equal(judgeShapes({ task: 'generate', prompt: 'a red circle' }, said), false, 'one object asked, two seen');
    assert.equal(judgeShapes({ task: 'generate', prompt: said }, said), true);
    assert.equal(judgeShapes({ task: 'generate', prompt: 'a green circle' }, said), false);
    assert.equal(judgeShapes({ task: 'generate', prompt: 'a small red circle at the top left on a white background' }, said), false);
    assert.equal(judgeShapes({ task: 'generate', prompt: 'a blue square and a red circle on a black background' }, said), false);
  });

  it('fails a reading that is not a description, and passes a prompt it cannot read (the first image is kept)', () => {
    assert.equal(judgeShapes({ task: 'generate', prompt: 'a blue square and a red circle' }, 'I see shapes.'), false);
    assert.equal(judgeShapes({ task: 'generate', prompt: 'a portrait of a cat' }, 'I see shapes.'), true);
  });

  it("passes an edit whose reading is the model's reading of the input with the instruction applied", () => {
    const moved: Scene = { ...scene, objects: [{ ...scene.objects[0]!, position: 'left' }, scene.objects[1]!] };
    const request = { task: 'edit', prompt: 'move the circle to the left', input: said } as const;
    assert.equal(judgeShapes(request, describeScene(moved)), true);
    assert.equal(judgeShapes(request, said), false, 'nothing moved');
    const recoloured: Scene = { ...moved, objects: [moved.objects[0]!, { ...scene.objects[1]!, color: 'green' }] };
    assert.equal(judgeShapes(request, describeScene(recoloured)), false, 'something else changed');
    assert.equal(judgeShapes({ ...request, input: 'no idea' }, said), true, 'an input it cannot read cannot be judged');
  });
});
