/**
 * Views of an image for understanding (src/model/views.ts): an image given as pixels is encoded at the request's
 * scale and at each view scale, and the answer is decoded from one prompt row per view, their logits averaged. On the
 * random tiny bundle the answers mean nothing; what is checked is that the views are the image's own encodings, that
 * each takes a decoder row, that the rows are averaged (not summed, not ignored), and that a stored image read with
 * its stored views answers exactly as the upload did.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { InvalidRequestError, TarModel } from '../../src/model/index.ts';
import { averagedPick, createPipeline } from '../../src/model/sampling.ts';
import { Rng } from '../../src/model/random.ts';
import { bundleCopy, GOLDEN_DIR, TINY_BUNDLE } from './helpers.ts';

const QUESTIONS = ['What color is the circle?', 'Describe the image.', 'How many shapes are there?'];
const greedy = { temperature: 0, maxNewTokens: 12 };

describe('averagedPick', () => {
  it('picks from the mean of the rows, not their sum', () => {
    const pipeline = createPipeline({ settings: { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1 }, rng: new Rng(1, 0) });
    const rows = [Float32Array.from([0, 4, 1]), Float32Array.from([0, 0, 5])];
    assert.equal(averagedPick(pipeline)(rows), 2, 'mean (0, 2, 3) → 2, where row 0 alone would give 1');
    assert.deepEqual([...(rows[0] as Float32Array)], [0, 2, 3]);
    assert.equal(averagedPick(pipeline)([Float32Array.from([3, 1])]), 0, 'one row: its own argmax');
  });
});

describe('understanding from several views of an image', () => {
  let model: TarModel;
  let bytes: Uint8Array;

  before(async () => {
    model = await TarModel.load({ bundleDir: TINY_BUNDLE, intraOpThreads: 1 });
    bytes = await readFile(join(GOLDEN_DIR, 'image_a.png'));
  });
  after(async () => {
    await model?.dispose();
  });

  it('encodes the upload at every view scale and reads each view in its own decoder row', async () => {
    const start = model.metrics().llm.rowSteps;
    const one = await model.understand({ image: { bytes }, prompt: QUESTIONS[0] as string, scale: 2, viewScales: [], sampling: greedy });
    const oneRows = model.metrics().llm.rowSteps - start;
    const mid = model.metrics().llm.rowSteps;
    const two = await model.understand({ image: { bytes }, prompt: QUESTIONS[0] as string, scale: 2, viewScales: [3], sampling: greedy });
    const twoRows = model.metrics().llm.rowSteps - mid;
    assert.deepEqual(one.imageViews, []);
    assert.deepEqual(two.imageTokens, await model.encodeImage(bytes, 2));
    assert.deepEqual(two.imageViews, [await model.encodeImage(bytes, 3)]);
    // One decode step fewer than answer tokens (the first comes from the prefill), plus the one that found the eos.
    assert.equal(oneRows, one.answerIds.length === greedy.maxNewTokens ? one.answerIds.length - 1 : one.answerIds.length);
    assert.equal(twoRows, 2 * (two.answerIds.length === greedy.maxNewTokens ? two.answerIds.length - 1 : two.answerIds.length));
  });

  it('answers a stored image read with its stored views exactly as it answered the upload', async () => {
    for (const prompt of QUESTIONS) {
      const upload = await model.understand({ image: { bytes }, prompt, scale: 2, viewScales: [3, 1], sampling: greedy });
      const stored = await model.understand({
        image: { ...upload.imageTokens, views: upload.imageViews },
        prompt,
        sampling: greedy,
      });
      assert.deepEqual(stored.answerIds, upload.answerIds, prompt);
      assert.deepEqual(stored.imageViews, upload.imageViews);
    }
  });

  it('a view changes the answer, and a copy of the image itself as a view does not (the rows are averaged)', async () => {
    const image = await model.encodeImage(bytes, 2);
    let changed = 0;
    for (const prompt of QUESTIONS) {
      // Sampled at temperature 1 with one seed: a sum of two identical rows would double the logits and sharpen the
      // draws, their mean leaves every draw as it was.
      const sampled = { temperature: 1, maxNewTokens: 12 };
      const alone = await model.understand({ image, prompt, seed: 7, sampling: sampled });
      const twice = await model.understand({ image: { ...image, views: [image] }, prompt, seed: 7, sampling: sampled });
      assert.deepEqual(twice.answerIds, alone.answerIds, prompt);
      const plain = await model.understand({ image, prompt, sampling: greedy });
      const viewed = await model.understand({ image, prompt, viewScales: [3], sampling: greedy });
      assert.deepEqual(viewed.answerIds, plain.answerIds, 'tokens carry their views; viewScales is for pixels');
      const withView = await model.understand({
        image: { ...image, views: [await model.encodeImage(bytes, 1)] },
        prompt,
        sampling: greedy,
      });
      if (withView.text !== plain.text) changed += 1;
    }
    assert.ok(changed > 0, 'the scale-1 view changed none of the answers');
  });

  it('skips a view at the image’s own scale and refuses scales the bundle lacks', async () => {
    const result = await model.understand({ image: { bytes }, prompt: 'Describe the image.', scale: 3, viewScales: [3, 2, 2], sampling: greedy });
    assert.deepEqual(result.imageViews.map((v) => v.scale), [2]);
    await assert.rejects(
      model.understand({ image: { bytes }, prompt: 'Describe the image.', viewScales: [4] }),
      (error: unknown) => error instanceof InvalidRequestError && /viewScales must hold scales of the bundle \(1, 2, 3\), not 4/.test(error.message),
    );
    const image = await model.encodeImage(bytes, 2);
    await assert.rejects(
      model.understand({ image: { ...image, views: [{ tokens: [1, 2], scale: 3 }] }, prompt: 'Describe the image.' }),
      InvalidRequestError,
    );
  });
});

describe("a bundle's understanding section", () => {
  let model: TarModel;
  let cleanup: () => Promise<void>;
  let bytes: Uint8Array;

  before(async () => {
    const copy = await bundleCopy((m) => {
      m.understanding = { scale: 3, viewScales: [2] };
    });
    cleanup = copy.cleanup;
    model = await TarModel.load({ bundleDir: copy.dir, intraOpThreads: 1 });
    bytes = await readFile(join(GOLDEN_DIR, 'image_b.png'));
  });
  after(async () => {
    await model?.dispose();
    await cleanup?.();
  });

  it('sets the scale and views of an upload unless the request names its own', async () => {
    assert.deepEqual(model.info().understanding, { scale: 3, viewScales: [2] });
    const byDefault = await model.understand({ image: { bytes }, prompt: 'Describe the image.', sampling: greedy });
    assert.equal(byDefault.imageTokens.scale, 3);
    assert.deepEqual(byDefault.imageViews, [await model.encodeImage(bytes, 2)]);
    const alone = await model.understand({ image: { bytes }, prompt: 'Describe the image.', scale: 1, viewScales: [], sampling: greedy });
    assert.equal(alone.imageTokens.scale, 1);
    assert.deepEqual(alone.imageViews, []);
    // Generation keeps the bundle's defaultScale.
    assert.equal(model.info().defaultScale, 2);
  });
});
