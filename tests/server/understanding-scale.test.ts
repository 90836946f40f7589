/**
 * A bundle may read images best at another scale than it writes them (the manifest's `understanding.scale`,
 * src/model/views.ts): the server encodes an upload that is to be understood at that scale, an upload that is to be
 * edited at the output's scale, and a request's own `scale` wins over both. In-process GraphQL on PGlite, with a copy
 * of the tiny bundle that reads at scale 3 and writes at scale 2.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TarModel } from '../../src/model/index.ts';
import { type DialectServer, startServer } from '../../src/server/app.ts';
import { loadConfig } from '../../src/server/config.ts';
import { createLogger } from '../../src/server/logging.ts';
import { openTestDatabase, type TestDatabase } from '../db/harness.ts';
import { bundleCopy } from '../model/helpers.ts';
import { exec, freshUser, LogSink, pngBase64, TURN_FIELDS } from './helpers.ts';

const UNDERSTAND = `mutation($input: UnderstandInput!) { understand(input: $input) { ${TURN_FIELDS} } }`;
const EDIT = `mutation($input: EditInput!) { edit(input: $input) { ${TURN_FIELDS} } }`;

describe('the scale an upload is encoded at', () => {
  let handle: TestDatabase;
  let model: TarModel;
  let server: DialectServer;
  let cleanup: () => Promise<void>;

  before(async () => {
    const copy = await bundleCopy((m) => {
      m.understanding = { scale: 3 };
    });
    cleanup = copy.cleanup;
    model = await TarModel.load({ bundleDir: copy.dir, maxBatch: 4, intraOpThreads: 1 });
    handle = await openTestDatabase('pglite');
    const config = loadConfig({ PORT: '0', DIALECT_MODEL: copy.dir, LOG_LEVEL: 'info' });
    server = await startServer(config, { database: handle.database, model, logger: createLogger('info', new LogSink()) });
  });
  after(async () => {
    await server?.stop();
    await handle?.dispose();
    await model?.dispose();
    await cleanup?.();
  });

  it("is the model's understanding scale for a question, its default scale for an edit, the request's when given", async () => {
    const user = freshUser();
    const info = await exec(server, '{ model { defaultScale understandingScale } }', {}, user);
    assert.deepEqual({ ...info.data.model }, { defaultScale: 2, understandingScale: 3 });
    const image = { base64: await pngBase64() };
    const asked = await exec(server, UNDERSTAND, { input: { prompt: 'Describe the image.', image } }, user);
    assert.deepEqual(asked.data.understand.errors, []);
    assert.equal(asked.data.understand.turn.inputImage.scale, 3);
    assert.equal(asked.data.understand.turn.inputImage.tokens.length, 9);
    const edited = await exec(server, EDIT, { input: { prompt: 'make the circle blue', image } }, user);
    assert.deepEqual(edited.data.edit.errors, []);
    assert.equal(edited.data.edit.turn.inputImage.scale, 2);
    const chosen = await exec(server, UNDERSTAND, { input: { prompt: 'Describe the image.', image, scale: 1 } }, user);
    assert.equal(chosen.data.understand.turn.inputImage.scale, 1);
  });
});
