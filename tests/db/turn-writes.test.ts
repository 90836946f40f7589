import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addTurn, createConversation, getConversation, getImage, getJob, getTurn, listImages, recoverInterruptedJobs } from '../../src/db/index.ts';
import { finishJob, startTurn } from '../../src/db/turn-writes.ts';
import { forEachDriver } from './harness.ts';
import { makeUser, rejectsWith, RESULT, tokensImage } from './fixtures.ts';

forEachDriver((context) => {
  test('startTurn writes a new conversation, an uploaded image, the turn and a queued job in one statement', async () => {
    const { database } = context;
    const user = await makeUser(database);
    const started = await startTurn(database, user.id, {
      conversation: { title: 'hello' },
      task: 'understand',
      prompt: 'what is it?',
      settings: { seed: 7 },
      inputImage: { image: { ...tokensImage(), png: Buffer.from('png!') } },
    });
    assert.equal(started.job.status, 'queued');
    assert.equal(started.job.attempts, 0);
    assert.equal(started.conversation?.title, 'hello');
    const stored = await getTurn(database, user.id, started.turn.id);
    assert.deepEqual(stored, started.turn, 'the turn in memory is the stored one');
    assert.equal(stored.inputImages[0]?.hasPng, true);
    assert.equal((await getJob(database, user.id, started.job.id)).status, 'queued');
  });

  test('startTurn with a claim writes the job running for the worker; a crash leaves it to recovery', async () => {
    const { database } = context;
    const user = await makeUser(database);
    const conversation = await createConversation(database, user.id, { title: 't' });
    const first = await addTurn(database, user.id, { conversationId: conversation.id, task: 'generate', prompt: 'a', inputImages: [{ image: tokensImage() }] });
    const image = first.turn.inputImages[0]!;
    const started = await startTurn(database, user.id, {
      conversation: { id: conversation.id },
      parentId: first.turn.id,
      task: 'edit',
      prompt: 'make it green',
      inputImage: { imageId: image.id },
      claim: { workerId: 'w1', leaseMs: 60_000 },
    });
    assert.equal(started.job.status, 'running');
    assert.equal(started.job.attempts, 1);
    assert.equal(started.turn.status, 'running');
    assert.deepEqual(await getTurn(database, user.id, started.turn.id), started.turn);
    // The process dies here: the next start recovers every running job.
    const recovered = await recoverInterruptedJobs(database, { everyRunningJob: true });
    assert.ok(recovered.requeued.includes(started.job.id));
    assert.equal((await getJob(database, user.id, started.job.id)).status, 'queued');
    await rejectsWith(finishJob(database, started.job.id, 'w1', { userId: user.id, task: 'edit' }, RESULT), 'INVALID_STATE');
  });

  test('startTurn writes nothing when a reference is not the user\'s', async () => {
    const { database } = context;
    const user = await makeUser(database);
    const other = await makeUser(database);
    const conversation = await createConversation(database, user.id, { title: 't' });
    const foreign = await createConversation(database, other.id, { title: 'x' });
    const foreignTurn = await addTurn(database, other.id, { conversationId: foreign.id, task: 'generate', prompt: 'a', inputImages: [{ image: tokensImage() }] });
    const before = await getConversation(database, user.id, conversation.id);
    await rejectsWith(startTurn(database, user.id, { conversation: { id: foreign.id }, task: 'generate', prompt: 'p' }), 'NOT_FOUND');
    await rejectsWith(
      startTurn(database, user.id, { conversation: { id: conversation.id }, parentId: foreignTurn.turn.id, task: 'generate', prompt: 'p' }),
      'NOT_FOUND',
    );
    await rejectsWith(
      startTurn(database, user.id, { conversation: { title: 'new' }, task: 'edit', prompt: 'p', inputImage: { imageId: foreignTurn.turn.inputImages[0]!.id } }),
      'NOT_FOUND',
    );
    const after = await getConversation(database, user.id, conversation.id);
    assert.equal(after.turns.length, 0);
    assert.equal(after.conversation.updatedAt.getTime(), before.conversation.updatedAt.getTime(), 'not touched');
    const mine = await startTurn(database, user.id, { conversation: { title: 'n' }, task: 'generate', prompt: 'p' });
    assert.equal((await getTurn(database, user.id, mine.turn.id)).conversationId, mine.turn.conversationId);
    await rejectsWith(startTurn(database, user.id, { conversation: { title: 'n' }, task: 'generate', prompt: 'x'.repeat(9000) }), 'FIELD_TOO_LONG');
  });

  test('finishJob writes the result and ends the job in one statement; the turn in memory matches the stored one', async () => {
    const { database } = context;
    const user = await makeUser(database);
    const upload = await startTurn(database, user.id, {
      conversation: { title: 'c' },
      task: 'edit',
      prompt: 'edit it',
      settings: {},
      inputImage: { image: tokensImage() },
      claim: { workerId: 'w', leaseMs: 60_000 },
    });
    const png = Buffer.from([1, 2, 3]);
    const done = await finishJob(database, upload.job.id, 'w', { userId: user.id, task: 'edit' }, {
      ...RESULT,
      seed: 99,
      outputImages: [{ ...tokensImage({ origin: 'edited', renderSeed: 5 }), png }],
    });
    assert.equal(done.job.status, 'succeeded');
    assert.ok(done.job.finishedAt instanceof Date);
    const stored = await getTurn(database, user.id, upload.turn.id);
    assert.deepEqual(stored, { ...upload.turn, ...done.turn });
    assert.equal(stored.settings.seed, 99);
    assert.equal(stored.outputImages[0]?.parentImageId, upload.turn.inputImages[0]!.id, 'an edit descends from its input');
    assert.deepEqual((await getImage(database, user.id, stored.outputImages[0]!.id)).tokens, tokensImage().tokens);
    assert.deepEqual(await getJob(database, user.id, upload.job.id), done.job);
    await rejectsWith(finishJob(database, upload.job.id, 'w', { userId: user.id, task: 'edit' }, RESULT), 'INVALID_STATE');

    const text = await startTurn(database, user.id, { conversation: { title: 'c' }, task: 'understand', prompt: 'q', claim: { workerId: 'w', leaseMs: 1000 } });
    await rejectsWith(finishJob(database, text.job.id, 'other', { userId: user.id, task: 'understand' }, RESULT), 'INVALID_STATE');
    const answered = await finishJob(database, text.job.id, 'w', { userId: user.id, task: 'understand' }, { ...RESULT, answer: 'a circle' });
    assert.deepEqual(await getTurn(database, user.id, text.turn.id), { ...text.turn, ...answered.turn });
    assert.equal(answered.turn.answer, 'a circle');
    await rejectsWith(finishJob(database, '01900000-0000-7000-8000-000000000000', 'w', { userId: user.id, task: 'understand' }, RESULT), 'NOT_FOUND');
  });

  test('finishJob writes nothing for an invalid result or a foreign parent image', async () => {
    const { database } = context;
    const user = await makeUser(database);
    const other = await makeUser(database);
    const foreign = await startTurn(database, other.id, { conversation: { title: 'x' }, task: 'understand', prompt: 'q', inputImage: { image: tokensImage() } });
    const started = await startTurn(database, user.id, { conversation: { title: 'c' }, task: 'generate', prompt: 'p', claim: { workerId: 'w', leaseMs: 60_000 } });
    const imagesBefore = (await listImages(database, user.id)).items.length;
    await rejectsWith(
      finishJob(database, started.job.id, 'w', { userId: user.id, task: 'generate' }, {
        ...RESULT,
        outputImages: [tokensImage({ origin: 'generated', parentImageId: foreign.turn.inputImages[0]!.id })],
      }),
      'INVALID_INPUT',
    );
    await rejectsWith(finishJob(database, started.job.id, 'w', { userId: user.id, task: 'generate' }, { ...RESULT, answer: 'x'.repeat(40_000) }), 'FIELD_TOO_LONG');
    assert.equal((await getJob(database, user.id, started.job.id)).status, 'running');
    assert.equal((await listImages(database, user.id)).items.length, imagesBefore);
    assert.equal((await getTurn(database, user.id, started.turn.id)).status, 'running');
  });
});
