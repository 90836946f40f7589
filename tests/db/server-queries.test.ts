import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  addTurn,
  claimNextJob,
  completeJob,
  createApiKey,
  createConversation,
  findOrCreateDiscordUser,
  getImageTurnId,
  getTurnJobId,
  newId,
  revokeApiKey,
} from '../../src/db/index.ts';
import {
  claimJob,
  getLatestTurnId,
  getOrCreateOwner,
  hasActiveApiKeys,
  listImageEdits,
  listQueuedJobs,
} from '../../src/db/server-queries.ts';
import { forEachDriver } from './harness.ts';
import { makeUser, rejectsWith, RESULT, tokensImage } from './fixtures.ts';

forEachDriver((context) => {
  test('claimJob claims exactly one queued job, once', async () => {
    const { database } = context;
    const user = await makeUser(database);
    const conversation = await createConversation(database, user.id, { title: 't' });
    const first = await addTurn(database, user.id, { conversationId: conversation.id, task: 'generate', prompt: 'a' });
    const second = await addTurn(database, user.id, { conversationId: conversation.id, task: 'generate', prompt: 'b' });
    const claimed = await claimJob(database, second.jobId!, 'w');
    assert.equal(claimed?.id, second.jobId);
    assert.equal(claimed?.status, 'running');
    assert.equal(claimed?.attempts, 1);
    assert.equal(claimed?.task, 'generate');
    assert.equal(claimed?.userId, user.id);
    assert.equal(await claimJob(database, second.jobId!, 'other'), null, 'no second claim');
    assert.ok((await listQueuedJobs(database)).some((job) => job.id === first.jobId), 'the older job stays queued');
    await rejectsWith(claimJob(database, 'nope', 'w'), 'NOT_FOUND');
  });


  test('the owner is the oldest user without a Discord id, made once even on concurrent first calls', async () => {
    const { database } = context;
    await findOrCreateDiscordUser(database, { discordId: '123456789', displayName: 'bot user' });
    const owners = await Promise.all([getOrCreateOwner(database), getOrCreateOwner(database), getOrCreateOwner(database)]);
    assert.equal(new Set(owners.map((o) => o.id)).size, 1);
    assert.equal(owners[0]!.discordId, null);
    await makeUser(database);
    assert.equal((await getOrCreateOwner(database)).id, owners[0]!.id, 'a later user does not take over');
  });

  test('hasActiveApiKeys is true while a key is not revoked', async () => {
    const { database } = context;
    const user = await makeUser(database);
    const before = await hasActiveApiKeys(database);
    const { apiKey } = await createApiKey(database, user.id, { name: 'k', scopes: [] });
    assert.equal(await hasActiveApiKeys(database), true);
    await revokeApiKey(database, user.id, apiKey.id);
    assert.equal(await hasActiveApiKeys(database), before);
  });

  test('queued jobs, a turn’s job, an image’s turn and edits, scoped to their user', async () => {
    const { database } = context;
    const user = await makeUser(database);
    const other = await makeUser(database);
    const conversation = await createConversation(database, user.id, { title: 't' });
    const { turn, jobId } = await addTurn(database, user.id, {
      conversationId: conversation.id,
      task: 'edit',
      prompt: 'make it blue',
      inputImages: [{ image: tokensImage() }],
    });
    assert.ok((await listQueuedJobs(database)).some((job) => job.id === jobId && job.userId === user.id));
    assert.equal(await getLatestTurnId(database, user.id, conversation.id), turn.id);
    const empty = await createConversation(database, user.id, { title: 'empty' });
    assert.equal(await getLatestTurnId(database, user.id, empty.id), null);
    await rejectsWith(getLatestTurnId(database, other.id, conversation.id), 'NOT_FOUND');
    assert.equal(await getTurnJobId(database, user.id, turn.id), jobId);
    await rejectsWith(getTurnJobId(database, other.id, turn.id), 'NOT_FOUND');

    let claimed = await claimNextJob(database, 'w');
    while (claimed !== null && claimed.id !== jobId) claimed = await claimNextJob(database, 'w');
    assert.ok(claimed !== null);
    await completeJob(database, jobId!, 'w', { ...RESULT, outputImages: [tokensImage({ origin: 'edited' })] });
    assert.ok(!(await listQueuedJobs(database)).some((job) => job.id === jobId));

    const input = turn.inputImages[0]!;
    const edits = await listImageEdits(database, user.id, input.id);
    assert.equal(edits.length, 1);
    assert.equal(edits[0]!.origin, 'edited');
    assert.deepEqual(await listImageEdits(database, other.id, input.id), []);
    assert.equal(await getImageTurnId(database, user.id, input.id), turn.id, 'an upload leads to the turn that read it');
    assert.equal(await getImageTurnId(database, user.id, edits[0]!.id), turn.id, 'an output leads to the turn that wrote it');
    await rejectsWith(getImageTurnId(database, other.id, input.id), 'NOT_FOUND');
    await rejectsWith(getImageTurnId(database, user.id, newId()), 'NOT_FOUND');
  });
});
