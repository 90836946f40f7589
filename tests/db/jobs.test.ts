import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eq, inArray, sql } from 'drizzle-orm';
import {
  addTurn,
  cancelJob,
  claimNextJob,
  completeJob,
  createConversation,
  failJob,
  getConversation,
  getJob,
  getTurn,
  getTurnJobId,
  listJobs,
  recoverInterruptedJobs,
  renewJobLease,
  type Database,
} from '../../src/db/index.ts';
import { jobs } from '../../src/db/schema/index.ts';
import { forEachDriver } from './harness.ts';
import { makeUser, rejectsWith, RESULT, tokensImage } from './fixtures.ts';

async function queueTurn(database: Database, userId: string, prompt = 'a blue square', maxAttempts?: number) {
  const conversation = await createConversation(database, userId, { title: prompt });
  const { turn, jobId } = await addTurn(database, userId, {
    conversationId: conversation.id,
    task: 'generate',
    prompt,
    settings: { scale: 2 },
    ...(maxAttempts === undefined ? {} : { maxAttempts }),
  });
  return { conversation, turn, jobId: jobId! };
}

/** Closes jobs left queued or running by earlier tests of the file, so each test sees only its own. */
async function drain(database: Database) {
  await database.db.update(jobs).set({ status: 'cancelled' }).where(inArray(jobs.status, ['queued', 'running']));
}

forEachDriver((context) => {
  test('a worker claims the oldest job, and completing it fills the turn in one go', async () => {
    const { database } = context;
    await drain(database);
    const user = await makeUser(database);
    const first = await queueTurn(database, user.id, 'first');
    const second = await queueTurn(database, user.id, 'second');
    assert.equal(await getTurnJobId(database, user.id, first.turn.id), first.jobId);

    const claimed = await claimNextJob(database, 'worker-a');
    assert.equal(claimed?.id, first.jobId);
    assert.equal(claimed?.attempts, 1);
    assert.equal(claimed?.task, 'generate');
    assert.equal(claimed?.userId, user.id);
    assert.equal((await getTurn(database, user.id, first.turn.id)).status, 'running');
    await renewJobLease(database, first.jobId, 'worker-a');
    await rejectsWith(renewJobLease(database, first.jobId, 'worker-b'), 'INVALID_STATE');
    await rejectsWith(completeJob(database, first.jobId, 'worker-b', RESULT), 'INVALID_STATE');

    const done = await completeJob(database, first.jobId, 'worker-a', {
      ...RESULT,
      seed: 1234,
      outputImages: [tokensImage({ origin: 'generated', scale: 2, tokens: [7, 8], renderSeed: 1234, png: Buffer.from('png') })],
    });
    assert.equal(done.status, 'succeeded');
    assert.ok(done.finishedAt instanceof Date);
    const turn = await getTurn(database, user.id, first.turn.id);
    assert.equal(turn.status, 'succeeded');
    assert.equal(turn.settings.seed, 1234, 'the seed the model chose is kept for rerolls');
    assert.equal(turn.settings.scale, 2);
    assert.equal(turn.outputImages.length, 1);
    assert.equal(turn.modelVersion, '0.1.0');
    await rejectsWith(completeJob(database, first.jobId, 'worker-a', RESULT), 'INVALID_STATE');

    assert.equal((await claimNextJob(database, 'worker-a'))?.id, second.jobId);
    assert.equal(await claimNextJob(database, 'worker-a'), null);
    const page = await listJobs(database, user.id, { status: ['running'] });
    assert.deepEqual(page.items.map((job) => job.id), [second.jobId]);
  });

  test('a failed result, a retryable failure and a final failure', async () => {
    const { database } = context;
    await drain(database);
    const user = await makeUser(database);
    const { turn, jobId } = await queueTurn(database, user.id, 'flaky', 2);
    await claimNextJob(database, 'w');
    const retried = await failJob(database, jobId, 'w', { code: 'INFERENCE_FAILED', message: 'onnx hiccup', retry: true });
    assert.equal(retried.status, 'queued');
    assert.equal((await getTurn(database, user.id, turn.id)).status, 'pending');
    const again = await claimNextJob(database, 'w');
    assert.equal(again?.attempts, 2);
    const final = await failJob(database, jobId, 'w', { code: 'INFERENCE_FAILED', message: 'x'.repeat(5000), retry: true });
    assert.equal(final.status, 'failed', 'no attempts left');
    assert.equal(final.errorMessage!.length, 2000, 'long messages are clipped, not refused');
    const failed = await getTurn(database, user.id, turn.id);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.errorCode, 'INFERENCE_FAILED');

    const other = await queueTurn(database, user.id, 'refused prompt');
    await claimNextJob(database, 'w');
    await completeJob(database, other.jobId, 'w', { ...RESULT, status: 'failed', errorCode: 'PROMPT_TOO_LONG', errorMessage: 'too long' });
    assert.equal((await getJob(database, user.id, other.jobId)).status, 'failed');
    assert.equal((await getTurn(database, user.id, other.turn.id)).errorCode, 'PROMPT_TOO_LONG');
  });

  test('cancelling: queued and running jobs stop, finished ones refuse, others cannot touch it', async () => {
    const { database } = context;
    await drain(database);
    const user = await makeUser(database);
    const stranger = await makeUser(database);
    const queued = await queueTurn(database, user.id, 'queued');
    await rejectsWith(cancelJob(database, stranger.id, queued.jobId), 'NOT_FOUND');
    await rejectsWith(getJob(database, stranger.id, queued.jobId), 'NOT_FOUND');
    assert.equal((await cancelJob(database, user.id, queued.jobId)).status, 'cancelled');
    assert.equal((await getTurn(database, user.id, queued.turn.id)).status, 'cancelled');
    assert.equal(await claimNextJob(database, 'w'), null, 'a cancelled job is never claimed');
    await rejectsWith(cancelJob(database, user.id, queued.jobId), 'INVALID_STATE');

    const running = await queueTurn(database, user.id, 'running');
    await claimNextJob(database, 'w');
    await cancelJob(database, user.id, running.jobId);
    await rejectsWith(renewJobLease(database, running.jobId, 'w'), 'INVALID_STATE');
    await rejectsWith(completeJob(database, running.jobId, 'w', RESULT), 'INVALID_STATE');
    assert.equal((await getConversation(database, user.id, running.conversation.id)).turns[0]!.outputImages.length, 0);
  });

  test('a job left running by a crash is requeued at the next start, then failed when out of attempts', async () => {
    const { database } = context;
    await drain(database);
    const user = await makeUser(database);
    const once = await queueTurn(database, user.id, 'one attempt', 1);
    const twice = await queueTurn(database, user.id, 'two attempts', 2);
    await claimNextJob(database, 'crashed-process');
    await claimNextJob(database, 'crashed-process');
    // A live worker's job with a fresh lease is not taken by the periodic sweep...
    assert.deepEqual(await recoverInterruptedJobs(database), { requeued: [], failed: [] });
    // ...but at start-up every running job was left by a dead process.
    const recovered = await recoverInterruptedJobs(database, { everyRunningJob: true });
    assert.deepEqual(recovered, { requeued: [twice.jobId], failed: [once.jobId] });
    const failed = await getTurn(database, user.id, once.turn.id);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.errorCode, 'INTERRUPTED');
    assert.equal((await getJob(database, user.id, twice.jobId)).status, 'queued');
    assert.equal((await getTurn(database, user.id, twice.turn.id)).status, 'pending');
    // The old worker, should it wake up, cannot finish what it no longer holds.
    await rejectsWith(completeJob(database, twice.jobId, 'crashed-process', RESULT), 'INVALID_STATE');

    const reclaimed = await claimNextJob(database, 'new-process', { leaseMs: 1 });
    assert.equal(reclaimed?.id, twice.jobId);
    await new Promise((resolve) => setTimeout(resolve, 20));
    // An expired lease is found by the sweep too.
    assert.deepEqual(await recoverInterruptedJobs(database), { requeued: [], failed: [twice.jobId] });
    const [row] = await database.db.select({ status: jobs.status, lease: jobs.leaseExpiresAt }).from(jobs).where(eq(jobs.id, twice.jobId));
    assert.deepEqual(row, { status: 'failed', lease: null });
    assert.equal((await database.db.select().from(jobs).where(eq(jobs.status, 'running'))).length, 0, 'nothing left hanging');
  });

  test('concurrent workers never claim the same job', async () => {
    const { database } = context;
    await drain(database);
    const user = await makeUser(database);
    const queued = [];
    for (let index = 0; index < 8; index += 1) queued.push((await queueTurn(database, user.id, `job ${index}`)).jobId);
    const claims = await Promise.all(Array.from({ length: 12 }, (_, index) => claimNextJob(database, `w${index}`)));
    const claimed = claims.filter((job) => job !== null).map((job) => job.id);
    assert.equal(claimed.length, 8);
    assert.deepEqual([...claimed].sort(), [...queued].sort());
    const [attempts] = await database.db.select({ total: sql<number>`sum(attempts)::int` }).from(jobs).where(eq(jobs.userId, user.id));
    assert.equal(attempts!.total, 8);
  });
});
