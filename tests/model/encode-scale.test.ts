/**
 * The scale an image given as pixels is encoded at when the caller names none (TarModel.encodeImage, the CLI's
 * reconstruct, the evaluation's round trip): the scale the model reads images at (`understanding.scale`, where the
 * server stores a question's upload), not the scale it writes images at (`defaultScale`). Both the in-thread and the
 * threaded model. On the random tiny bundle the tokens mean nothing: what is checked is their scale.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TarModel, ThreadedTarModel } from '../../src/model/index.ts';
import { bundleCopy, GOLDEN_DIR, TINY_BUNDLE } from './helpers.ts';

describe('the scale of an image encoded without one', () => {
  let readsAtThree: { dir: string; cleanup: () => Promise<void> };
  let bytes: Uint8Array;

  before(async () => {
    readsAtThree = await bundleCopy((m) => {
      m.defaultScale = 2;
      m.understanding = { scale: 3, viewScales: [] };
    });
    bytes = await readFile(join(GOLDEN_DIR, 'image_a.png'));
  });
  after(async () => readsAtThree?.cleanup());

  for (const Model of [TarModel, ThreadedTarModel]) {
    it(`${Model.name}: the reading scale, not the writing scale`, async () => {
      const model = await Model.load({ bundleDir: readsAtThree.dir, intraOpThreads: 1 });
      try {
        const image = await model.encodeImage(bytes);
        assert.equal(image.scale, 3);
        assert.equal(image.tokens.length, 9);
        assert.deepEqual(image, await model.encodeImage(bytes, 3));
        assert.equal((await model.encodeImage(bytes, 2)).tokens.length, 16, 'a named scale wins');
      } finally {
        await model.dispose();
      }
    });
  }

  it('a bundle that does not say how it reads images encodes them at its default scale', async () => {
    const model = await TarModel.load({ bundleDir: TINY_BUNDLE, intraOpThreads: 1 });
    try {
      assert.equal(model.manifest.understanding, undefined);
      assert.equal((await model.encodeImage(bytes)).scale, model.manifest.defaultScale);
    } finally {
      await model.dispose();
    }
  });
});
