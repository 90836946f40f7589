/** Admission of model requests, before anything is written: shutdown, rate, jobs per user, the bounded queue. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_LIMITS } from '../../src/server/config.ts';
import { UserFailure } from '../../src/server/errors.ts';
import { JobEvents } from '../../src/server/jobs/events.ts';
import type { JobRunner } from '../../src/server/jobs/runner.ts';
import { RateLimiter } from '../../src/server/limits.ts';
import { ServerMetrics } from '../../src/server/metrics.ts';
import { TurnService } from '../../src/server/services/turns.ts';
import { tinyModel } from './helpers.ts';

async function service(runner: Partial<JobRunner>, limits = DEFAULT_LIMITS, rate = new RateLimiter(600, 100)) {
  const metrics = new ServerMetrics();
  const turns = new TurnService({} as never, await tinyModel(), runner as JobRunner, new JobEvents(), limits, rate, metrics);
  return { turns, metrics };
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof UserFailure, String(error));
    return error.code;
  }
  return 'accepted';
}

test('a full queue refuses with QUEUE_FULL and counts the refusal', async () => {
  const { turns, metrics } = await service({ queueDepth: DEFAULT_LIMITS.maxQueue, activeJobs: () => 0 });
  assert.equal(await refusal(turns.request('u', 'u', { task: 'generate', prompt: 'p' })), 'QUEUE_FULL');
  assert.match(await metrics.text(), /dialect_jobs_refused_total\{task="generate",code="QUEUE_FULL"\} 1/);
});

test('a user at the running-jobs cap is RATE_LIMITED', async () => {
  const { turns } = await service({ queueDepth: 0, activeJobs: () => DEFAULT_LIMITS.maxActiveJobsPerUser });
  assert.equal(await refusal(turns.request('u', 'u', { task: 'generate', prompt: 'p' })), 'RATE_LIMITED');
});

test('the token bucket refuses a burst beyond its size, per user', async () => {
  const { turns } = await service({ queueDepth: DEFAULT_LIMITS.maxQueue, activeJobs: () => 0 }, DEFAULT_LIMITS, new RateLimiter(1, 2));
  const codes = [];
  for (let i = 0; i < 3; i += 1) codes.push(await refusal(turns.request('u', 'u', { task: 'generate', prompt: 'p' })));
  // The first two pass the bucket (and meet the full queue); the third is refused by the bucket.
  assert.deepEqual(codes, ['QUEUE_FULL', 'QUEUE_FULL', 'RATE_LIMITED']);
  assert.equal(await refusal(turns.request('v', 'v', { task: 'generate', prompt: 'p' })), 'QUEUE_FULL');
});

test('after stopAccepting (shutdown) new requests are refused', async () => {
  const { turns } = await service({ queueDepth: 0, activeJobs: () => 0 });
  turns.stopAccepting();
  assert.equal(await refusal(turns.request('u', 'u', { task: 'generate', prompt: 'p' })), 'UNAVAILABLE');
});
