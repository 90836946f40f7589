/**
 * The scale an edit is written at when the request names none (TarModel.edit, the manifest's `editing`): an upload is
 * encoded and edited at `editing.scale`; an image given as tokens is edited at its own scale, because the model copies
 * what an edit keeps token by token and does that badly across scales (docs/model-card.md); a request's scale wins.
 * On the random tiny bundle the pixels mean nothing: what is checked is the scale of the tokens read and written.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TarModel } from '../../src/model/index.ts';
import { bundleCopy, GOLDEN_DIR } from './helpers.ts';

const PROMPT = 'make the circle blue';

describe('the scale of an edit', () => {
  let model: TarModel;
  let cleanup: () => Promise<void>;
  let bytes: Uint8Array;

  before(async () => {
    const copy = await bundleCopy((m) => {
      m.defaultScale = 2;
      m.editing = { scale: 3 };
    });
    cleanup = copy.cleanup;
    model = await TarModel.load({ bundleDir: copy.dir, intraOpThreads: 1 });
    bytes = await readFile(join(GOLDEN_DIR, 'image_a.png'));
  });
  after(async () => {
    await model?.dispose();
    await cleanup?.();
  });

  it("encodes an upload at the manifest's editing scale and writes the edit at it", async () => {
    assert.deepEqual(model.info().editing, { scale: 3 });
    const result = await model.edit({ image: { bytes }, prompt: PROMPT, seed: 1 });
    assert.deepEqual(result.inputImageTokens, await model.encodeImage(bytes, 3));
    assert.equal(result.image.scale, 3);
    assert.equal(result.image.tokens.length, 9);
  });

  it("writes an edit of an image given as tokens at that image's scale", async () => {
    // Scale 1: neither the default scale (2) nor the editing scale (3).
    const tokens = await model.encodeImage(bytes, 1);
    const result = await model.edit({ image: tokens, prompt: PROMPT, seed: 1 });
    assert.deepEqual(result.inputImageTokens, tokens);
    assert.equal(result.image.scale, 1);
    assert.equal(result.image.tokens.length, 81);
  });

  it("follows the request's scale over both", async () => {
    const upload = await model.edit({ image: { bytes }, prompt: PROMPT, scale: 1, seed: 1 });
    assert.equal(upload.inputImageTokens?.scale, 1);
    assert.equal(upload.image.scale, 1);
    const stored = await model.edit({ image: await model.encodeImage(bytes, 2), prompt: PROMPT, scale: 3, seed: 1 });
    assert.equal(stored.inputImageTokens?.scale, 2, 'given tokens are used as they are');
    assert.equal(stored.image.scale, 3);
    const reread = await model.edit({ image: { bytes }, prompt: PROMPT, scale: 2, imageScale: 3, seed: 1 });
    assert.deepEqual([reread.inputImageTokens?.scale, reread.image.scale], [3, 2]);
  });
});
