import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { main } from '../../src/cli/main.ts';
import {
  addTurn,
  createConversation,
  deleteConversation,
  exportHistory,
  getConversation,
  getImage,
  getImagePng,
  importHistory,
  listConversations,
  type Database,
  type DialectExport,
} from '../../src/db/index.ts';
import { forEachDriver } from './harness.ts';
import { makeUser, rejectsWith, RESULT, tokensImage } from './fixtures.ts';

const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
const UPLOAD_VIEWS = [{ scale: 3, tokens: [7, 8, 9, 10, 11, 12, 13, 14, 15] }];

/** A conversation with a tree of turns, an upload, an edit chain, a cached and an uncached PNG, a queued turn. */
async function history(database: Database, userId: string, title: string) {
  const conversation = await createConversation(database, userId, { title });
  const root = await addTurn(database, userId, {
    conversationId: conversation.id,
    task: 'generate',
    prompt: 'a red circle',
    settings: { seed: 5, scale: 2, sampling: { temperature: 1 } },
    result: { ...RESULT, seed: 5, outputImages: [tokensImage({ origin: 'generated', scale: 2, tokens: [1, 2, 3, 4], renderSeed: 5 })] },
  });
  const edit = await addTurn(database, userId, {
    conversationId: conversation.id,
    parentId: root.turn.id,
    task: 'edit',
    prompt: 'make it blue',
    inputImages: [{ imageId: root.turn.outputImages[0]!.id }, { image: tokensImage({ png: PNG, views: UPLOAD_VIEWS }) }],
    result: { ...RESULT, outputImages: [tokensImage({ origin: 'edited', tokens: [9, 9], png: PNG })] },
  });
  await addTurn(database, userId, { conversationId: conversation.id, parentId: root.turn.id, task: 'understand', prompt: 'what is it?', result: { ...RESULT, answer: 'A red circle.' } });
  await addTurn(database, userId, { conversationId: conversation.id, parentId: edit.turn.id, task: 'generate', prompt: 'still queued' });
  return conversation;
}

/** The conversation as a person sees it, without ids or dates: what a round trip must keep. */
async function shape(database: Database, userId: string, conversationId: string) {
  const { conversation, turns } = await getConversation(database, userId, conversationId);
  const index = new Map(turns.map((turn, at) => [turn.id, at]));
  return {
    title: conversation.title,
    turns: turns.map((turn) => ({
      parent: turn.parentId === null ? null : index.get(turn.parentId),
      task: turn.task,
      prompt: turn.prompt,
      answer: turn.answer,
      settings: turn.settings,
      status: turn.status,
      timings: turn.timings,
      inputs: turn.inputImages.map((image) => [image.origin, image.contentHash, image.hasPng, image.parentImageId !== null]),
      outputs: turn.outputImages.map((image) => [image.origin, image.contentHash, image.hasPng, image.parentImageId !== null]),
    })),
  };
}

forEachDriver((context) => {
  test('export then import restores the conversation, its tree, tokens and PNGs; again changes nothing', async () => {
    const { database } = context;
    const user = await makeUser(database);
    const conversation = await history(database, user.id, 'round trip');
    const before = await shape(database, user.id, conversation.id);
    const { turns } = await getConversation(database, user.id, conversation.id);
    const generated = turns[0]!.outputImages[0]!;

    const rendered: number[][] = [];
    const document = await exportHistory(database, user.id, {
      conversationId: conversation.id,
      renderPng: async ({ tokens, seed }) => {
        rendered.push(tokens);
        assert.equal(seed, 5, 'renders with the seed the image was made with');
        return PNG;
      },
    });
    assert.deepEqual(rendered, [[1, 2, 3, 4]], 'only the image without a cached PNG was rendered');
    assert.ok(document.images.every((image) => image.png !== null));
    const json = JSON.parse(JSON.stringify(document)) as DialectExport;

    await deleteConversation(database, user.id, conversation.id);
    const summary = await importHistory(database, json, { userId: user.id });
    assert.deepEqual(summary.conversations, { imported: 1, skipped: 0 });
    assert.equal(summary.turns, 4);
    assert.deepEqual(summary.images, { imported: 3, skipped: 0 });

    const after = await shape(database, user.id, conversation.id);
    assert.deepEqual(after.turns.map((turn) => turn.status), ['succeeded', 'succeeded', 'succeeded', 'failed']);
    after.turns[3]!.status = 'pending';
    for (const turn of after.turns) turn.inputs.forEach((input) => (input[2] = true));
    for (const turn of before.turns) turn.inputs.forEach((input) => (input[2] = true));
    for (const turn of after.turns) turn.outputs.forEach((output) => (output[2] = true));
    for (const turn of before.turns) turn.outputs.forEach((output) => (output[2] = true));
    assert.deepEqual(after, before);
    assert.deepEqual((await getImage(database, user.id, generated.id)).tokens, [1, 2, 3, 4]);
    const upload = (await getConversation(database, user.id, conversation.id)).turns[1]!.inputImages[1]!;
    assert.deepEqual((await getImage(database, user.id, upload.id)).views, UPLOAD_VIEWS, "the upload's views came back");
    assert.deepEqual(await getImagePng(database, user.id, generated.id), PNG);
    assert.equal((await getConversation(database, user.id, conversation.id)).turns[3]!.errorCode, 'INTERRUPTED');

    const again = await importHistory(database, json, { userId: user.id });
    assert.deepEqual(again.conversations, { imported: 0, skipped: 1 });
    assert.deepEqual(again.images, { imported: 0, skipped: 3 });
    assert.equal((await listConversations(database, user.id)).items.length, 1);
  });

  test('a whole user exports without rendering (png null), and imports as a copy with new ids', async () => {
    const { database } = context;
    const user = await makeUser(database);
    await history(database, user.id, 'one');
    await history(database, user.id, 'two');
    const document = await exportHistory(database, user.id);
    assert.equal(document.conversations.length, 2);
    assert.equal(document.images.filter((image) => image.png === null).length, 2);
    assert.equal(document.user.id, user.id);

    const other = await makeUser(database);
    await rejectsWith(importHistory(database, document, { userId: other.id }), 'CONFLICT');
    assert.equal((await listConversations(database, other.id)).items.length, 0, 'a refused import writes nothing');

    const copy = await importHistory(database, document, { userId: other.id, newIds: true });
    assert.deepEqual(copy.conversations, { imported: 2, skipped: 0 });
    const originals = (await listConversations(database, user.id)).items;
    const copies = (await listConversations(database, other.id)).items;
    assert.deepEqual(copies.map((c) => c.title), originals.map((c) => c.title));
    assert.ok(copies.every((c) => !originals.some((o) => o.id === c.id)));
    for (let index = 0; index < 2; index += 1) {
      const a = await shape(database, user.id, originals[index]!.id);
      const b = await shape(database, other.id, copies[index]!.id);
      assert.deepEqual(b.turns.map((turn) => turn.outputs), a.turns.map((turn) => turn.outputs));
    }
  });

  test('a malformed or tampered document is refused whole', async () => {
    const { database } = context;
    const user = await makeUser(database);
    const conversation = await history(database, user.id, 'tamper');
    const document = JSON.parse(JSON.stringify(await exportHistory(database, user.id, { conversationId: conversation.id }))) as DialectExport;
    await deleteConversation(database, user.id, conversation.id);
    await rejectsWith(importHistory(database, { ...document, format: 'other' }), 'INVALID_INPUT', 'format');
    await rejectsWith(importHistory(database, null), 'INVALID_INPUT');
    const tampered = structuredClone(document);
    tampered.images[0]!.tokens[0] = 7;
    await rejectsWith(importHistory(database, tampered, { userId: user.id }), 'INVALID_INPUT', 'images');
    const outOfCodebook = structuredClone(document);
    outOfCodebook.images[0]!.tokens[0] = 100_000;
    await rejectsWith(importHistory(database, outOfCodebook, { userId: user.id }), 'INVALID_INPUT', 'tokens');
    const long = structuredClone(document);
    long.conversations[0]!.turns[0]!.prompt = 'x'.repeat(9000);
    await rejectsWith(importHistory(database, long, { userId: user.id }), 'FIELD_TOO_LONG');
    const dangling = structuredClone(document);
    dangling.conversations[0]!.turns[1]!.inputImageIds = ['00000000-0000-7000-8000-000000000000'];
    await rejectsWith(importHistory(database, dangling, { userId: user.id }), 'INVALID_INPUT');
    assert.equal((await listConversations(database, user.id)).items.length, 0);
    await rejectsWith(exportHistory(database, user.id, { conversationId: '00000000-0000-7000-8000-000000000000' }), 'NOT_FOUND');
  });

  test('dialect export and dialect import on the command line', { skip: context.driver !== 'pg' && 'the CLI opens $DATABASE_URL' }, async () => {
    const { database } = context;
    const user = await makeUser(database);
    const conversation = await history(database, user.id, 'cli');
    const folder = mkdtempSync(join(tmpdir(), 'dialect-export-'));
    const saved = process.env.DATABASE_URL;
    process.env.DATABASE_URL = context.url;
    try {
      const file = join(folder, 'conversation.json');
      assert.equal(await main(['export', '--conversation', conversation.id, '--out', file, '--tokens-only']), 0);
      const written = JSON.parse(readFileSync(file, 'utf8')) as DialectExport;
      assert.equal(written.conversations[0]!.id, conversation.id);
      assert.ok(written.images.some((image) => image.png !== null && Buffer.from(image.png, 'base64').equals(PNG)));
      await deleteConversation(database, user.id, conversation.id);
      assert.equal(await main(['import', file]), 0);
      assert.equal((await getConversation(database, user.id, conversation.id)).turns.length, 4);
      assert.equal(await main(['import', file]), 0, 'a second import is a no-op');
      assert.equal(await main(['export', '--user', user.id, '--conversation', conversation.id]), 2, 'one of the two flags');
      assert.equal(await main(['export', '--conversation', '00000000-0000-7000-8000-000000000000', '--tokens-only']), 1);
    } finally {
      if (saved === undefined) delete process.env.DATABASE_URL;
      else process.env.DATABASE_URL = saved;
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
