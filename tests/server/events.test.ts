import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JobEvents } from '../../src/server/jobs/events.ts';

const step = (done: number) => ({ stage: 'DECODE' as const, done, total: 10 });

test('a slow subscriber gets the latest snapshot and always the terminal one, then the stream ends', async () => {
  const events = new JobEvents();
  const stream = events.stream('j');
  for (let i = 1; i <= 5; i += 1) events.publish({ jobId: 'j', terminal: false, progress: step(i) });
  assert.equal((await stream.next()).value?.progress.done, 5);
  assert.equal(events.progress('j')?.done, 5);
  events.publish({ jobId: 'j', terminal: false, progress: step(6) });
  events.publish({ jobId: 'j', terminal: true, progress: { stage: 'DONE', done: 1, total: 1 } });
  const last = await stream.next();
  assert.equal(last.value?.terminal, true);
  assert.equal((await stream.next()).done, true);
  assert.equal(events.progress('j'), undefined);
});

test('terminal() resolves on the end; return() unsubscribes', async () => {
  const events = new JobEvents();
  const ended = events.terminal('k');
  const stream = events.stream('k');
  await stream.return?.();
  events.publish({ jobId: 'k', terminal: true, progress: { stage: 'DONE', done: 1, total: 1 } });
  assert.equal((await ended).jobId, 'k');
  assert.equal((await stream.next()).done, true);
});
