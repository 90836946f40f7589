import assert from 'node:assert/strict';
import { test } from 'node:test';
import { count, eq } from 'drizzle-orm';
import {
  addTurn,
  contentHash,
  createConversation,
  decodeTokens,
  deleteConversation,
  deleteTurn,
  deleteUser,
  encodeTokens,
  findImagesByHash,
  getConversation,
  getImage,
  getImagePng,
  getImageTurnId,
  listImageChildren,
  listImages,
  setImagePng,
} from '../../src/db/index.ts';
import { images, jobs, turnImages, turns } from '../../src/db/schema/index.ts';
import { forEachDriver } from './harness.ts';
import { makeUser, rejectsWith, RESULT, tokensImage } from './fixtures.ts';

test('tokens pack into 2 bytes each and come back exactly, up to the released codebook', () => {
  const tokens = [0, 1, 511, 512, 32_767, 32_768, 65_535];
  const bytes = encodeTokens(tokens, 65_536);
  assert.equal(bytes.length, 14);
  assert.deepEqual(decodeTokens(bytes), tokens);
  const a = contentHash({ tokens: bytes, scale: 1, codebookSize: 65_536, modelVersion: 'v1' });
  assert.match(a, /^[0-9a-f]{64}$/);
  assert.notEqual(a, contentHash({ tokens: bytes, scale: 2, codebookSize: 65_536, modelVersion: 'v1' }));
  assert.notEqual(a, contentHash({ tokens: bytes, scale: 1, codebookSize: 65_536, modelVersion: 'v2' }));
});

forEachDriver((context) => {
  test('an image keeps its tokens, scale, codebook and hash; the PNG is a cache', async () => {
    const { database } = context;
    const user = await makeUser(database);
    const conversation = await createConversation(database, user.id, { title: 'img' });
    const tokens = Array.from({ length: 729 }, (_, index) => (index * 8_191) % 65_536);
    const { turn } = await addTurn(database, user.id, {
      conversationId: conversation.id,
      task: 'generate',
      prompt: 'released-size tokens',
      result: {
        ...RESULT,
        outputImages: [
          tokensImage({ origin: 'generated', tokens, codebookSize: 65_536, scale: 1, width: 1024, height: 1024, renderSeed: 2 ** 40 }),
        ],
      },
    });
    const summary = turn.outputImages[0]!;
    assert.equal(summary.hasPng, false);
    const image = await getImage(database, user.id, summary.id);
    assert.deepEqual(image.tokens, tokens);
    assert.equal(image.codebookSize, 65_536);
    assert.equal(image.renderSeed, 2 ** 40);
    assert.equal(image.contentHash, contentHash({ tokens: encodeTokens(tokens, 65_536), scale: 1, codebookSize: 65_536, modelVersion: '0.1.0' }));
    assert.equal(await getImagePng(database, user.id, image.id), null);
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 255]);
    await setImagePng(database, user.id, image.id, png);
    assert.deepEqual(await getImagePng(database, user.id, image.id), png);
    assert.equal((await getImage(database, user.id, image.id)).hasPng, true);
    assert.deepEqual((await findImagesByHash(database, user.id, image.contentHash)).map((found) => found.id), [image.id]);
    assert.equal(await getImageTurnId(database, user.id, image.id), turn.id);

    const stranger = await makeUser(database);
    await rejectsWith(getImage(database, stranger.id, image.id), 'NOT_FOUND');
    await rejectsWith(getImagePng(database, stranger.id, image.id), 'NOT_FOUND');
    await rejectsWith(setImagePng(database, stranger.id, image.id, null), 'NOT_FOUND');
    assert.equal((await findImagesByHash(database, stranger.id, image.contentHash)).length, 0);
    assert.deepEqual(await getImagePng(database, user.id, image.id), png, "the stranger's write changed nothing");
  });

  test("an upload keeps its views; a view that repeats a scale or holds a foreign code is refused", async () => {
    const { database } = context;
    const user = await makeUser(database);
    const conversation = await createConversation(database, user.id, { title: 'views' });
    const views = [{ scale: 2, tokens: Array.from({ length: 16 }, (_, i) => i * 3) }, { scale: 3, tokens: [1, 2, 3, 4, 5, 6, 7, 8, 9] }];
    const { turn } = await addTurn(database, user.id, {
      conversationId: conversation.id, task: 'understand', prompt: 'what is it?', inputImages: [{ image: tokensImage({ views }) }],
    });
    assert.deepEqual((await getImage(database, user.id, turn.inputImages[0]!.id)).views, views);
    const { turn: plain } = await addTurn(database, user.id, {
      conversationId: conversation.id, task: 'understand', prompt: 'and this?', inputImages: [{ image: tokensImage({ tokens: [4, 5] }) }],
    });
    assert.deepEqual((await getImage(database, user.id, plain.inputImages[0]!.id)).views, [], 'none by default');
    for (const bad of [[{ scale: 1, tokens: [1] }], [{ scale: 2, tokens: [1] }, { scale: 2, tokens: [2] }], [{ scale: 2, tokens: [512] }]]) {
      await rejectsWith(
        addTurn(database, user.id, { conversationId: conversation.id, task: 'understand', prompt: 'bad', inputImages: [{ image: tokensImage({ views: bad }) }] }),
        'INVALID_INPUT',
      );
    }
  });

  test("a user's images page newest first and filter by origin", async () => {
    const { database } = context;
    const user = await makeUser(database);
    const conversation = await createConversation(database, user.id, { title: 'gallery' });
    const { turn } = await addTurn(database, user.id, {
      conversationId: conversation.id,
      task: 'edit',
      prompt: 'edit',
      inputImages: [{ image: tokensImage() }, { image: tokensImage({ tokens: [9] }) }],
      result: { ...RESULT, outputImages: [tokensImage({ origin: 'edited' }), tokensImage({ origin: 'edited', tokens: [3] })] },
    });
    const all = [...turn.inputImages, ...turn.outputImages].map((image) => image.id);
    const page1 = await listImages(database, user.id, { limit: 3 });
    const page2 = await listImages(database, user.id, { limit: 3, cursor: page1.nextCursor! });
    assert.deepEqual([...page1.items, ...page2.items].map((image) => image.id).sort(), [...all].sort());
    assert.equal(page2.nextCursor, null);
    assert.deepEqual(
      (await listImages(database, user.id, { origin: 'upload' })).items.map((image) => image.id).sort(),
      turn.inputImages.map((image) => image.id).sort(),
    );
    assert.deepEqual(
      (await listImageChildren(database, user.id, turn.inputImages[0]!.id)).map((image) => image.id),
      turn.outputImages.map((image) => image.id),
    );
  });

  test('deleting a conversation removes its turns, jobs and the images only it used', async () => {
    const { database } = context;
    const user = await makeUser(database);
    const keep = await createConversation(database, user.id, { title: 'keep' });
    const drop = await createConversation(database, user.id, { title: 'drop' });
    const shared = await addTurn(database, user.id, {
      conversationId: keep.id,
      task: 'understand',
      prompt: 'describe',
      inputImages: [{ image: tokensImage() }],
      result: { ...RESULT, answer: 'a circle' },
    });
    const sharedImage = shared.turn.inputImages[0]!.id;
    const first = await addTurn(database, user.id, {
      conversationId: drop.id,
      task: 'edit',
      prompt: 'blue',
      inputImages: [{ imageId: sharedImage }, { image: tokensImage({ tokens: [1] }) }],
      result: { ...RESULT, outputImages: [tokensImage({ origin: 'edited', tokens: [2] })] },
    });
    const queued = await addTurn(database, user.id, { conversationId: drop.id, parentId: first.turn.id, task: 'generate', prompt: 'again' });
    assert.ok(queued.jobId);
    const onlyDrop = [first.turn.inputImages[1]!.id, first.turn.outputImages[0]!.id];

    const result = await deleteConversation(database, user.id, drop.id);
    assert.equal(result.deletedImages, 2);
    await rejectsWith(getConversation(database, user.id, drop.id), 'NOT_FOUND');
    for (const id of onlyDrop) await rejectsWith(getImage(database, user.id, id), 'NOT_FOUND');
    assert.equal((await getImage(database, user.id, sharedImage)).id, sharedImage, 'an image another conversation uses stays');
    const [orphans] = await database.db
      .select({ n: count() })
      .from(images)
      .where(eq(images.userId, user.id));
    assert.equal(orphans!.n, 1);
    assert.equal((await database.db.select().from(turns).where(eq(turns.conversationId, drop.id))).length, 0);
    assert.equal((await database.db.select().from(jobs).where(eq(jobs.id, queued.jobId))).length, 0);

    // Deleting the last conversation that uses it takes the shared image too.
    await deleteConversation(database, user.id, keep.id);
    await rejectsWith(getImage(database, user.id, sharedImage), 'NOT_FOUND');
  });

  test('deleting a turn removes its subtree and the images only that subtree used', async () => {
    const { database } = context;
    const user = await makeUser(database);
    const conversation = await createConversation(database, user.id, { title: 'prune' });
    const root = await addTurn(database, user.id, {
      conversationId: conversation.id,
      task: 'generate',
      prompt: 'root',
      result: { ...RESULT, outputImages: [tokensImage({ origin: 'generated' })] },
    });
    const child = await addTurn(database, user.id, {
      conversationId: conversation.id,
      parentId: root.turn.id,
      task: 'edit',
      prompt: 'child',
      inputImages: [{ imageId: root.turn.outputImages[0]!.id }],
      result: { ...RESULT, outputImages: [tokensImage({ origin: 'edited', tokens: [5] })] },
    });
    await addTurn(database, user.id, { conversationId: conversation.id, parentId: child.turn.id, task: 'understand', prompt: 'grandchild', result: RESULT });
    const { deletedImages } = await deleteTurn(database, user.id, child.turn.id);
    assert.equal(deletedImages, 1);
    const { turns: left } = await getConversation(database, user.id, conversation.id);
    assert.deepEqual(left.map((turn) => turn.id), [root.turn.id]);
    assert.equal((await getImage(database, user.id, root.turn.outputImages[0]!.id)).origin, 'generated');
  });

  test('deleting a user removes everything of theirs and nothing of others', async () => {
    const { database } = context;
    const gone = await makeUser(database);
    const stays = await makeUser(database);
    for (const user of [gone, stays]) {
      const conversation = await createConversation(database, user.id, { title: 't' });
      await addTurn(database, user.id, { conversationId: conversation.id, task: 'edit', prompt: 'x', inputImages: [{ image: tokensImage() }] });
    }
    await deleteUser(database, gone.id);
    for (const table of [images, turns, jobs]) {
      const [left] = await database.db.select({ n: count() }).from(table).where(eq(table.userId, gone.id));
      assert.equal(left!.n, 0);
      const [kept] = await database.db.select({ n: count() }).from(table).where(eq(table.userId, stays.id));
      assert.equal(kept!.n, 1);
    }
    const [links] = await database.db.select({ n: count() }).from(turnImages);
    assert.ok(links!.n >= 1);
    await rejectsWith(deleteUser(database, gone.id), 'NOT_FOUND');
  });
});
