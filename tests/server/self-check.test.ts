/**
 * `sampling.selfCheck` of generate and edit (src/model/self-check.ts) through the API: the flag reaches the model,
 * which then reads and judges its image; the turn keeps it in its settings (`TurnSettings.selfCheck`), so a reroll
 * checks again; without it the model writes once. In-process GraphQL on PGlite, with a copy of the tiny bundle that
 * has a self-check and a scripted judge that counts its calls.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DialectServer } from '../../src/server/app.ts';
import { exec, freshUser, pngBase64, startOnBundleCopy } from './helpers.ts';

const FIELDS = 'turn { id status settings { seed selfCheck } image { id tokens } } errors { code message }';
const GENERATE = `mutation($input: GenerateInput!) { generate(input: $input) { ${FIELDS} } }`;
const EDIT = `mutation($input: EditInput!) { edit(input: $input) { ${FIELDS} } }`;
const REROLL = `mutation($input: RerollInput!) { reroll(input: $input) { ${FIELDS} } }`;

describe('self-check through the API', () => {
  let server: DialectServer;
  let dispose: (() => Promise<void>) | undefined;
  let judged = 0;

  before(async () => {
    const scripted = () => {
      judged += 1;
      return false;
    };
    ({ server, dispose } = await startOnBundleCopy(
      (m) => (m.selfCheck = { judge: 'scripted', question: 'Describe the image.', candidates: 2, temperature: 1 }),
      { judges: { scripted } },
    ));
  });
  after(async () => {
    await dispose?.();
  });

  it('checks a generation that asks for it, keeps the flag with the turn, and checks its reroll again', async () => {
    const user = freshUser();
    const before = judged;
    const plain = await exec(server, GENERATE, { input: { prompt: 'a red circle', seed: 4 } }, user);
    assert.deepEqual(plain.data.generate.errors, []);
    assert.equal(plain.data.generate.turn.settings.selfCheck, null);
    assert.equal(judged, before, 'not asked: written once, not judged');

    const checked = await exec(server, GENERATE, { input: { prompt: 'a red circle', seed: 4, sampling: { selfCheck: true } } }, user);
    assert.deepEqual(checked.data.generate.errors, []);
    assert.equal(checked.data.generate.turn.settings.selfCheck, true);
    assert.equal(judged, before + 3, 'the first image and both candidates were judged');
    assert.deepEqual(checked.data.generate.turn.image.tokens, plain.data.generate.turn.image.tokens, 'none passed: the first is kept');

    const rerolled = await exec(server, REROLL, { input: { turnId: checked.data.generate.turn.id } }, user);
    assert.deepEqual(rerolled.data.reroll.errors, []);
    assert.equal(rerolled.data.reroll.turn.settings.selfCheck, true);
    assert.equal(judged, before + 6);
  });

  it('refuses the flag, before a turn is written, where the model cannot check, and says so in model { selfCheck }', async () => {
    const info = await exec(server, '{ model { selfCheck } }', {}, freshUser());
    assert.equal(info.data.model.selfCheck, true);
    const without = await startOnBundleCopy((m) => {
      delete m.selfCheck;
    });
    try {
      const user = freshUser();
      assert.equal((await exec(without.server, '{ model { selfCheck } }', {}, user)).data.model.selfCheck, false);
      const refused = await exec(without.server, GENERATE, { input: { prompt: 'a red circle', sampling: { selfCheck: true } } }, user);
      assert.equal(refused.data.generate.turn, null);
      assert.deepEqual(JSON.parse(JSON.stringify(refused.data.generate.errors)), [
        { code: 'INVALID_INPUT', message: 'this model cannot check its images (no self-check)' },
      ]);
      const history = await exec(without.server, '{ conversations(first: 5) { edges { node { id } } } }', {}, user);
      assert.deepEqual(history.data.conversations.edges, [], 'nothing was written');
    } finally {
      await without.dispose();
    }
  });

  it('checks an edit that asks for it', async () => {
    const user = freshUser();
    const before = judged;
    const image = { base64: await pngBase64() };
    const edited = await exec(server, EDIT, { input: { prompt: 'make the circle blue', image, sampling: { selfCheck: true } } }, user);
    assert.deepEqual(edited.data.edit.errors, []);
    assert.equal(edited.data.edit.turn.settings.selfCheck, true);
    assert.equal(judged, before + 3);
  });
});
