/**
 * The LLM's position schemes (src/model/positions.ts): the `shared-edits` rule on hand-made ids (the same cases as
 * training/dialect_tar/test_positions.py), and end to end on the tiny bundle against the PyTorch reference's answers
 * (tests/fixtures/golden/shared-edits.json, training/make_shared_edits_fixture.py).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadBundle } from '../../src/model/bundle.ts';
import { TarModel, type Turn } from '../../src/model/index.ts';
import { parseManifest } from '../../src/model/manifest.ts';
import { positionRule, sequentialPositions, sharedEditPositions } from '../../src/model/positions.ts';
import { bundleCopy, GOLDEN_DIR, readJson, TINY_BUNDLE, tinyManifest } from './helpers.ts';

const [TURN, USER, ASSISTANT, NL, IM_START, IM_END, CHAT_END] = [1, 2, 3, 4, 5, 6, 7];
const [S1, S2, S3] = [11, 12, 13];
const BASE = 100;
const rule = sharedEditPositions({
  turnStart: TURN,
  assistantHeader: [TURN, ASSISTANT, NL],
  imStart: IM_START,
  scaleTokens: [S1, S2, S3],
  imageBase: BASE,
  imageCount: 50,
});
const image = (scale: number, codes: number[]) => [IM_START, scale, ...codes.map((c) => BASE + c), IM_END];
const user = (...body: number[]) => [TURN, USER, NL, ...body, CHAT_END, NL];
const indices = (n: number, from = 0) => Array.from({ length: n - from }, (_, i) => from + i);
const text = [30, 31, 32];

describe('shared-edits positions: the rule', () => {
  const prompt = [...user(...image(S2, [1, 2, 3, 4]), NL, ...text), TURN, ASSISTANT, NL, IM_START, S2];
  const answer = [BASE + 9, BASE + 8, BASE + 7, BASE + 6, IM_END];

  it("an edit's answer image takes its input image's positions; every other token its index", () => {
    const positions = rule([...prompt, ...answer]);
    const input = prompt.indexOf(BASE + 1);
    assert.deepEqual(positions.slice(prompt.length, prompt.length + 4), indices(input + 4, input));
    assert.deepEqual(positions.slice(0, prompt.length), indices(prompt.length));
    assert.equal(positions.at(-1), prompt.length + 4, '<im_end> keeps its index');
    assert.equal(rule([...prompt, ...answer.slice(0, 2)]).at(-1), input + 1, 'while decoding: the fed token');
  });

  it('another scale, a text answer, an image in a user turn or a generation: indices', () => {
    const otherScale = [...user(...image(S3, [1, 2, 3, 4]), NL, ...text), TURN, ASSISTANT, NL, IM_START, S2, ...answer];
    assert.deepEqual(rule(otherScale), indices(otherScale.length));
    const textAnswer = [...user(...image(S2, [1, 2, 3, 4]), NL, ...text), TURN, ASSISTANT, NL, 40, 41, CHAT_END, NL];
    assert.deepEqual(rule(textAnswer), indices(textAnswer.length));
    const start = prompt.length + answer.length + 2;
    const secondUser = [...prompt, ...answer, CHAT_END, NL, ...user(...image(S2, [5, 6, 7, 8]), NL, ...text)];
    assert.deepEqual(rule(secondUser).slice(start), indices(secondUser.length, start));
    const generation = [...prompt, ...answer, CHAT_END, NL, ...user(...text), TURN, ASSISTANT, NL, IM_START, S2, BASE];
    assert.equal(rule(generation).at(-1), generation.length - 1);
  });

  it('the next edit of a conversation shares the positions of the image its own user turn gives', () => {
    const start = prompt.length + answer.length + 2;
    const chain = [...prompt, ...answer, CHAT_END, NL, ...user(...image(S2, [9, 8, 7, 6]), NL, ...text)];
    chain.push(TURN, ASSISTANT, NL, IM_START, S2, BASE + 1);
    const input = start + 3 + 2;
    assert.equal(chain[input], BASE + 9);
    assert.equal(rule(chain).at(-1), input);
    assert.equal(rule(chain)[input], input);
  });
});

describe('shared-edits positions: the manifest', () => {
  it('llm.positions is optional, and must name a known scheme', async () => {
    const manifest = await tinyManifest();
    assert.equal(parseManifest(manifest).llm.positions, undefined);
    assert.equal(parseManifest({ ...manifest, llm: { ...manifest.llm, positions: 'shared-edits' } }).llm.positions, 'shared-edits');
    assert.throws(() => parseManifest({ ...manifest, llm: { ...manifest.llm, positions: 'rotated' } }), /llm\.positions/);
  });
});

describe('shared-edits positions: the runtime against the PyTorch reference', () => {
  let golden: any;
  let copy: Awaited<ReturnType<typeof bundleCopy>>;
  let sequential: TarModel;
  let shared: TarModel;

  before(async () => {
    golden = await readJson(join(GOLDEN_DIR, 'shared-edits.json'));
    copy = await bundleCopy((m) => {
      m.llm.positions = 'shared-edits';
    });
    sequential = await TarModel.load({ bundleDir: TINY_BUNDLE, intraOpThreads: 1 });
    shared = await TarModel.load({ bundleDir: copy.dir, intraOpThreads: 1 });
  });

  after(async () => {
    await sequential?.dispose();
    await shared?.dispose();
    await copy?.cleanup();
  });

  it("the bundle's rule gives the reference's position ids, under both schemes", async () => {
    for (const [scheme, dir] of [['sequential', TINY_BUNDLE], ['shared-edits', copy.dir]] as const) {
      const bundle = await loadBundle(dir, { intraOpThreads: 1 });
      try {
        const ids = [...golden[scheme].promptIds, ...golden[scheme].imageIds.map((c: number) => c + bundle.manifest.tokens.imageBase)];
        const rule = positionRule(bundle.manifest, bundle.tokenizer) ?? sequentialPositions;
        assert.deepEqual(rule(ids), golden[scheme].positionIds, scheme);
      } finally {
        await bundle.dispose();
      }
    }
  });

  it('an edit after an earlier edit: the greedy image ids of the reference, which differ between the schemes', async () => {
    const history: Turn[] = golden.history.map((t: any) =>
      t.role === 'user'
        ? { role: 'user', text: t.text, task: t.task, image: { tokens: t.imageIds, scale: t.scale } }
        : { role: 'assistant', image: { tokens: t.imageIds, scale: t.scale } },
    );
    const request = golden.request;
    const edit = (model: TarModel) =>
      model.edit({
        prompt: request.text,
        image: { tokens: request.imageIds, scale: request.scale },
        scale: request.scale,
        history,
        sampling: { temperature: 0 },
        seed: 1,
      });
    assert.deepEqual((await edit(sequential)).image.tokens, golden.sequential.imageIds);
    assert.deepEqual((await edit(shared)).image.tokens, golden['shared-edits'].imageIds);
  });
});
