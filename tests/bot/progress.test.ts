/**
 * Progress and cancel on a slow job: the model is held in DECODE (the real server and job runner around it), so the
 * test can see the progress message (stage and percent, a Cancel button), press Cancel, and see the end.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type Deployment, startDeployment } from './harness.ts';

let d: Deployment;
before(async () => {
  d = await startDeployment();
});
after(async () => {
  await d?.dispose();
});

test('progress shows stage and percent with a Cancel button; Cancel stops the job and says so', async () => {
  const model = d.server.services.model;
  const generate = model.generate.bind(model);
  model.generate = (async (request: { signal?: AbortSignal; onProgress?: (event: { stage: string; done: number; total: number }) => void }) => {
    request.onProgress?.({ stage: 'decode', done: 4, total: 16 });
    await new Promise((_resolve, reject) => {
      if (request.signal?.aborted === true) reject(request.signal.reason);
      request.signal?.addEventListener('abort', () => reject(request.signal?.reason), { once: true });
    });
  }) as unknown as typeof model.generate;
  try {
    const xena = d.person('xena');
    const ix = xena.slash(d.channel, 'imagine', { prompt: 'a slow circle' });
    const progress = await ix.waitForOriginal((m) => /writing tokens 25%/.test(m.content));
    assert.match(progress.content, /^⏳ Generating “a slow circle” · writing tokens 25% ▰▰▰▱▱▱▱▱▱▱$/);

    // Someone else cannot cancel it.
    const other = d.person('yuri').click(progress, (id) => id.startsWith('cancel:'));
    assert.match((await other.waitForOriginal()).content, /⚠️ .*someone else/);

    const cancel = xena.click(progress, (id) => id.startsWith('cancel:'));
    const ack = await cancel.acknowledged();
    assert.equal(Number(ack.data?.flags) & 64, 64);
    assert.match((await cancel.waitForOriginal()).content, /Cancelled/);
    const notice = await ix.waitForMessage((m) => m.content.startsWith('⚠️'));
    assert.match(notice.content, /cancelled/);
    assert.equal(notice.flags & 64, 64);
  } finally {
    model.generate = generate;
  }
});
