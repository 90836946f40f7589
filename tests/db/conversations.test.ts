import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'drizzle-orm';
import { toDbError } from '../../src/db/errors.ts';
import {
  addTurn,
  createConversation,
  cursorOf,
  deleteConversation,
  getConversation,
  getTurn,
  getTurnPath,
  listConversations,
  newId,
  renameConversation,
  searchTurns,
} from '../../src/db/index.ts';
import { forEachDriver } from './harness.ts';
import { makeUser, rejectsWith, RESULT, tokensImage } from './fixtures.ts';

forEachDriver((context) => {
  test('conversations page newest first on (created_at, id), with no gaps or repeats', async () => {
    const { database } = context;
    const user = await makeUser(database);
    const other = await makeUser(database);
    const made: string[] = [];
    for (let index = 0; index < 7; index += 1) {
      made.push((await createConversation(database, user.id, { title: `c${index}` })).id);
    }
    await createConversation(database, other.id, { title: 'not yours' });
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await listConversations(database, user.id, { limit: 3, ...(cursor === undefined ? {} : { cursor }) });
      seen.push(...page.items.map((item) => item.id));
      cursor = page.nextCursor ?? undefined;
      pages += 1;
    } while (cursor !== undefined);
    assert.equal(pages, 3);
    assert.deepEqual(seen, [...made].reverse());
  });

  test('rows created in the same millisecond still page exactly, by id', async () => {
    const { database } = context;
    const user = await makeUser(database);
    const first = await createConversation(database, user.id, { title: 'a' });
    const second = await createConversation(database, user.id, { title: 'b' });
    // Force equal created_at: the cursor must then fall back on the id.
    await database.db.execute(
      sql`update conversations set created_at = '2026-01-01T00:00:00.123Z' where user_id = ${user.id}`,
    );
    const page1 = await listConversations(database, user.id, { limit: 1 });
    assert.equal(page1.items[0]!.id, second.id);
    const page2 = await listConversations(database, user.id, { limit: 1, cursor: page1.nextCursor! });
    assert.deepEqual(page2.items.map((item) => item.id), [first.id]);
    assert.equal(page2.nextCursor, null);
    assert.equal(cursorOf(page1.items[0]!), page1.nextCursor);
  });

  test('a malformed cursor or limit is INVALID_INPUT', async () => {
    const { database } = context;
    const user = await makeUser(database);
    await rejectsWith(listConversations(database, user.id, { cursor: 'nonsense' }), 'INVALID_INPUT', 'cursor');
    await rejectsWith(listConversations(database, user.id, { limit: 0 }), 'INVALID_INPUT', 'limit');
    await rejectsWith(listConversations(database, user.id, { limit: 101 }), 'INVALID_INPUT', 'limit');
  });

  test('turns form a tree: follow-ups are children, rerolls siblings; the path is the history', async () => {
    const { database } = context;
    const user = await makeUser(database);
    const conversation = await createConversation(database, user.id, { title: 'tree' });
    const root = await addTurn(database, user.id, {
      conversationId: conversation.id,
      task: 'generate',
      prompt: 'a red circle',
      settings: { seed: 7, scale: 2 },
      result: { ...RESULT, outputImages: [tokensImage({ origin: 'generated', scale: 2, tokens: [1, 2, 3], renderSeed: 7 })] },
    });
    const edit = await addTurn(database, user.id, {
      conversationId: conversation.id,
      parentId: root.turn.id,
      task: 'edit',
      prompt: 'make it blue',
      inputImages: [{ imageId: root.turn.outputImages[0]!.id }],
      result: { ...RESULT, outputImages: [tokensImage({ origin: 'edited', tokens: [4, 5] })] },
    });
    const reroll = await addTurn(database, user.id, {
      conversationId: conversation.id,
      parentId: root.turn.id,
      task: 'edit',
      prompt: 'make it blue',
      settings: { seed: 8 },
      inputImages: [{ imageId: root.turn.outputImages[0]!.id }],
    });
    assert.equal(root.jobId, null);
    assert.ok(reroll.jobId !== null, 'an unfinished turn gets a queued job');
    assert.equal(reroll.turn.status, 'pending');
    assert.equal(edit.turn.outputImages[0]!.parentImageId, root.turn.outputImages[0]!.id, 'an edit output descends from its input');

    const { turns } = await getConversation(database, user.id, conversation.id);
    assert.deepEqual(turns.map((turn) => turn.id), [root.turn.id, edit.turn.id, reroll.turn.id]);
    assert.deepEqual(turns.map((turn) => turn.parentId), [null, root.turn.id, root.turn.id]);
    assert.equal(turns[0]!.settings.seed, 7);
    assert.deepEqual(turns[0]!.timings, RESULT.timings);
    assert.equal(turns[0]!.outputImages[0]!.scale, 2);

    const path = await getTurnPath(database, user.id, reroll.turn.id);
    assert.deepEqual(path.map((turn) => turn.id), [root.turn.id, reroll.turn.id]);
    const child = await addTurn(database, user.id, {
      conversationId: conversation.id,
      parentId: edit.turn.id,
      task: 'understand',
      prompt: 'what color?',
      result: { ...RESULT, answer: 'blue' },
    });
    assert.deepEqual(
      (await getTurnPath(database, user.id, child.turn.id)).map((turn) => turn.id),
      [root.turn.id, edit.turn.id, child.turn.id],
    );
  });

  test('a parent turn must be in the same conversation', async () => {
    const { database } = context;
    const user = await makeUser(database);
    const a = await createConversation(database, user.id, { title: 'a' });
    const b = await createConversation(database, user.id, { title: 'b' });
    const turn = await addTurn(database, user.id, { conversationId: a.id, task: 'understand', prompt: 'hi', result: RESULT });
    await rejectsWith(
      addTurn(database, user.id, { conversationId: b.id, parentId: turn.turn.id, task: 'understand', prompt: 'x' }),
      'NOT_FOUND',
    );
  });

  test("another user's rows are NOT_FOUND, exactly as unknown ids, and stay untouched", async () => {
    const { database } = context;
    const owner = await makeUser(database);
    const intruder = await makeUser(database);
    const conversation = await createConversation(database, owner.id, { title: 'private' });
    const { turn } = await addTurn(database, owner.id, {
      conversationId: conversation.id,
      task: 'edit',
      prompt: 'secret',
      inputImages: [{ image: tokensImage() }],
      result: RESULT,
    });
    const imageId = turn.inputImages[0]!.id;
    for (const id of [conversation.id, newId(), 'not-a-uuid']) {
      await rejectsWith(getConversation(database, intruder.id, id), 'NOT_FOUND');
      await rejectsWith(renameConversation(database, intruder.id, id, 'mine'), 'NOT_FOUND');
      await rejectsWith(deleteConversation(database, intruder.id, id), 'NOT_FOUND');
      await rejectsWith(addTurn(database, intruder.id, { conversationId: id, task: 'understand', prompt: 'x' }), 'NOT_FOUND');
    }
    await rejectsWith(getTurn(database, intruder.id, turn.id), 'NOT_FOUND');
    await rejectsWith(getTurnPath(database, intruder.id, turn.id), 'NOT_FOUND');
    // Using someone else's image as an input, or as the parent of an upload, is refused.
    const own = await createConversation(database, intruder.id, { title: 'mine' });
    await rejectsWith(
      addTurn(database, intruder.id, { conversationId: own.id, task: 'edit', prompt: 'x', inputImages: [{ imageId }] }),
      'NOT_FOUND',
    );
    await rejectsWith(
      addTurn(database, intruder.id, {
        conversationId: own.id,
        task: 'edit',
        prompt: 'x',
        inputImages: [{ image: tokensImage({ parentImageId: imageId }) }],
      }),
      'NOT_FOUND',
    );
    assert.equal((await searchTurns(database, intruder.id, 'secret')).items.length, 0);
    assert.equal((await listConversations(database, intruder.id)).items.length, 1);
    assert.equal((await getConversation(database, owner.id, conversation.id)).conversation.title, 'private');
    assert.equal((await getConversation(database, intruder.id, own.id)).turns.length, 0, 'the refused turns left nothing');
  });

  test('oversized fields are FIELD_TOO_LONG with the field named, and nothing is written', async () => {
    const { database } = context;
    const user = await makeUser(database);
    await rejectsWith(createConversation(database, user.id, { title: 'x'.repeat(201) }), 'FIELD_TOO_LONG', 'title');
    const conversation = await createConversation(database, user.id, { title: 'ok' });
    await rejectsWith(
      addTurn(database, user.id, { conversationId: conversation.id, task: 'generate', prompt: 'p'.repeat(8001) }),
      'FIELD_TOO_LONG',
      'prompt',
    );
    await rejectsWith(
      addTurn(database, user.id, {
        conversationId: conversation.id,
        task: 'understand',
        prompt: 'q',
        result: { ...RESULT, answer: 'a'.repeat(32_001) },
      }),
      'FIELD_TOO_LONG',
      'answer',
    );
    await rejectsWith(
      addTurn(database, user.id, {
        conversationId: conversation.id,
        task: 'understand',
        prompt: 'q',
        inputImages: [{ image: tokensImage({ tokens: new Array(4097).fill(1) }) }],
      }),
      'FIELD_TOO_LONG',
      'tokens',
    );
    await rejectsWith(
      addTurn(database, user.id, {
        conversationId: conversation.id,
        task: 'understand',
        prompt: 'q',
        inputImages: [{ image: tokensImage({ tokens: [512] }) }],
      }),
      'INVALID_INPUT',
      'tokens',
    );
    await rejectsWith(renameConversation(database, user.id, conversation.id, 't'.repeat(500)), 'FIELD_TOO_LONG', 'title');
    // The database's own limits hold too, for writes that bypass the data layer's checks.
    const raw = await database.db
      .execute(sql`update conversations set title = repeat('x', 300) where id = ${conversation.id}`)
      .then(() => undefined, (error: unknown) => error);
    assert.equal(toDbError(raw).code, 'FIELD_TOO_LONG');
    const { turns } = await getConversation(database, user.id, conversation.id);
    assert.equal(turns.length, 0);
    assert.equal((await getConversation(database, user.id, conversation.id)).conversation.title, 'ok');
  });

  test('search finds prompts and answers of the user, newest first, with paging', async () => {
    const { database } = context;
    const user = await makeUser(database);
    const conversation = await createConversation(database, user.id, { title: 'shapes' });
    await addTurn(database, user.id, { conversationId: conversation.id, task: 'generate', prompt: 'a green triangle', result: RESULT });
    await addTurn(database, user.id, {
      conversationId: conversation.id,
      task: 'understand',
      prompt: 'what is this?',
      result: { ...RESULT, answer: 'A green square on white.' },
    });
    await addTurn(database, user.id, { conversationId: conversation.id, task: 'generate', prompt: 'a red square', result: RESULT });
    const green = await searchTurns(database, user.id, 'green', { limit: 1 });
    assert.equal(green.items.length, 1);
    assert.equal(green.items[0]!.answer, 'A green square on white.');
    assert.equal(green.items[0]!.conversationTitle, 'shapes');
    const more = await searchTurns(database, user.id, 'green', { limit: 1, cursor: green.nextCursor! });
    assert.equal(more.items[0]!.prompt, 'a green triangle');
    assert.equal(more.nextCursor, null);
    assert.equal((await searchTurns(database, user.id, 'green square')).items.length, 1);
    assert.equal((await searchTurns(database, user.id, 'circle')).items.length, 0);
    assert.equal((await searchTurns(database, user.id, '"red square" -green')).items.length, 1);
  });
});
