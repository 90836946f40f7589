/**
 * A bundle may read and edit images best at other scales than it generates them, and read from several views (the
 * manifest's `understanding` and `editing`, src/model/views.ts): the server encodes an upload that is to be understood
 * at the reading scale, an upload that is to be edited at the editing scale (the edit is written at it), a request's
 * own `scale` winning over both; an edit of a stored image is written at that image's scale; and it stores the
 * upload's tokens at the bundle's other reading scales as its views, so that a question asked again about the stored
 * image reads what the first one read. In-process GraphQL on PGlite, with a copy of the tiny bundle that reads at
 * scale 3 with a scale-2 view, edits uploads at scale 1 and generates at scale 2.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TarModel } from '../../src/model/index.ts';
import type { DialectServer } from '../../src/server/app.ts';
import type { TestDatabase } from '../db/harness.ts';
import { getImage } from '../../src/db/images.ts';
import { exec, freshUser, pngBase64, startOnBundleCopy, TURN_FIELDS } from './helpers.ts';

const UNDERSTAND = `mutation($input: UnderstandInput!) { understand(input: $input) { ${TURN_FIELDS} } }`;
const EDIT = `mutation($input: EditInput!) { edit(input: $input) { ${TURN_FIELDS} } }`;

describe('the scale an upload is encoded at', () => {
  let handle: TestDatabase;
  let model: TarModel;
  let server: DialectServer;
  let dispose: (() => Promise<void>) | undefined;

  before(async () => {
    ({ server, model, handle, dispose } = await startOnBundleCopy((m) => {
      m.understanding = { scale: 3, viewScales: [2] };
      m.editing = { scale: 1 };
    }));
  });
  after(async () => {
    await dispose?.();
  });

  it("is the model's understanding scale for a question, its editing scale for an edit, the request's when given", async () => {
    const user = freshUser();
    const info = await exec(server, '{ model { defaultScale understandingScale understandingViewScales editScale } }', {}, user);
    assert.deepEqual(JSON.parse(JSON.stringify(info.data.model)), {
      defaultScale: 2,
      understandingScale: 3,
      understandingViewScales: [2],
      editScale: 1,
    });
    const image = { base64: await pngBase64() };
    const asked = await exec(server, UNDERSTAND, { input: { prompt: 'Describe the image.', image } }, user);
    assert.deepEqual(asked.data.understand.errors, []);
    assert.equal(asked.data.understand.turn.inputImage.scale, 3);
    assert.equal(asked.data.understand.turn.inputImage.tokens.length, 9);
    const edited = await exec(server, EDIT, { input: { prompt: 'make the circle blue', image } }, user);
    assert.deepEqual(edited.data.edit.errors, []);
    assert.equal(edited.data.edit.turn.inputImage.scale, 1);
    assert.equal(edited.data.edit.turn.image.scale, 1, 'written at the scale the upload was encoded at');
    // The image asked about (stored at scale 3) edited: written at its own scale, which the model copies from.
    const stored = { id: asked.data.understand.turn.inputImage.id };
    const restyled = await exec(server, EDIT, { input: { prompt: 'make the circle blue', image: stored } }, user);
    assert.deepEqual(restyled.data.edit.errors, []);
    assert.deepEqual([restyled.data.edit.turn.inputImage.scale, restyled.data.edit.turn.image.scale], [3, 3]);
    const rescaled = await exec(server, EDIT, { input: { prompt: 'make the circle blue', image: stored, scale: 2 } }, user);
    assert.deepEqual([rescaled.data.edit.turn.inputImage.scale, rescaled.data.edit.turn.image.scale], [3, 2]);
    const chosen = await exec(server, UNDERSTAND, { input: { prompt: 'Describe the image.', image, scale: 1 } }, user);
    assert.equal(chosen.data.understand.turn.inputImage.scale, 1);
  });

  it("stores an upload's views and reads them with it: the same answer as the runtime's, first time and later", async () => {
    const user = freshUser();
    const base64 = await pngBase64(40, 40, { r: 30, g: 60, b: 220 });
    const bytes = Buffer.from(base64, 'base64');
    const prompts = ['Describe the image.', 'What color is the circle?', 'How many shapes are there?'];
    const first = await exec(server, UNDERSTAND, { input: { prompt: prompts[0], image: { base64 } } }, user);
    const input = first.data.understand.turn.inputImage;
    const me = await exec(server, '{ me { id } }', {}, user);
    const stored = await getImage(handle.database, me.data.me.id, input.id);
    assert.deepEqual(stored.views, [await model.encodeImage(bytes, 2)], 'the scale-2 view is stored beside the scale-3 tokens');
    for (const prompt of prompts) {
      const direct = await model.understand({ image: { bytes }, prompt });
      assert.equal(direct.imageViews.length, 1);
      const asked = await exec(server, UNDERSTAND, { input: { prompt, image: { id: input.id } } }, user);
      assert.equal(asked.data.understand.turn.text, direct.text, `${prompt}: the stored image read as the upload is`);
    }
    assert.equal(first.data.understand.turn.text, (await model.understand({ image: { bytes }, prompt: prompts[0] as string })).text);

    // An upload stored for an edit (at scale 1) keeps its scale-3 and scale-2 views: asked about later, it is read
    // from them and itself.
    const edited = await exec(server, EDIT, { input: { prompt: 'make the circle red', image: { base64 } } }, user);
    const editInput = await getImage(handle.database, me.data.me.id, edited.data.edit.turn.inputImage.id);
    assert.equal(editInput.scale, 1);
    assert.deepEqual(editInput.views, [await model.encodeImage(bytes, 3), await model.encodeImage(bytes, 2)]);
  });
});
