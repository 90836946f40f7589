import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  CancelledError,
  type ImageTokens,
  InvalidRequestError,
  ModelDisposedError,
  type ProgressEvent,
  PromptTooLongError,
  QueueFullError,
  TarModel,
} from '../../src/model/index.ts';
import { GOLDEN_DIR, readJson, TINY_BUNDLE } from './helpers.ts';

let model: TarModel;
let golden: any;
let imageA: Buffer;

before(async () => {
  golden = await readJson(join(GOLDEN_DIR, 'golden.json'));
  imageA = await readFile(join(GOLDEN_DIR, 'image_a.png'));
  model = await TarModel.load({ bundleDir: TINY_BUNDLE, intraOpThreads: 1, maxBatch: 16 });
});

after(() => model?.dispose());

const imageOf = (seed: number, scale = 3): ImageTokens => ({
  tokens: Array.from({ length: scale === 1 ? 81 : scale === 2 ? 16 : 9 }, (_, i) => (i * 7 + seed * 13) % 64),
  scale,
});
const greedy = (maxNewTokens: number) => ({ temperature: 0, maxNewTokens });

describe('reproducibility', () => {
  it('the same inputs and seed give identical tokens, codes and PNG at concurrency 1', async () => {
    const request = { prompt: 'a red circle', scale: 3, seed: 7 };
    const a = await model.generate(request);
    const b = await model.generate(request);
    assert.equal(a.seed, 7);
    assert.deepEqual(a.image.tokens, b.image.tokens);
    assert.deepEqual(a.image.vqCodes, b.image.vqCodes);
    assert.ok(a.image.png.equals(b.image.png));
    const c = await model.generate({ ...request, seed: 8 });
    assert.notDeepEqual([a.image.tokens, a.image.vqCodes], [c.image.tokens, c.image.vqCodes]);
  });

  it('renderImage with the seed of a generation reproduces its pixels', async () => {
    const generated = await model.generate({ prompt: 'a blue square', scale: 3, seed: 99 });
    const rendered = await model.renderImage({ tokens: generated.image.tokens, scale: 3, seed: 99 });
    assert.deepEqual(rendered.vqCodes, generated.image.vqCodes);
    assert.ok(rendered.png.equals(generated.image.png));
  });

  it('a request without a seed reports the random seed it used, which replays it', async () => {
    const first = await model.understand({ image: imageOf(1), prompt: 'what?', sampling: { temperature: 1, maxNewTokens: 6 } });
    const again = await model.understand({ image: imageOf(1), prompt: 'what?', seed: first.seed, sampling: { temperature: 1, maxNewTokens: 6 } });
    assert.deepEqual(again.answerIds, first.answerIds);
  });
});

describe('continuous batching', () => {
  it('concurrent requests share decode steps and each ends as it would alone', async () => {
    const requests = [3, 7, 12, 5, 9].map((maxNewTokens, i) => ({
      image: imageOf(i, i % 2 === 0 ? 3 : 2),
      prompt: `question number ${i}`,
      sampling: greedy(maxNewTokens),
    }));
    const alone: number[][] = [];
    for (const r of requests) alone.push((await model.understand({ ...r, sampling: { ...r.sampling, maxNewTokens: 12 } })).answerIds);
    const before = model.metrics().llm;
    const together = await Promise.all(requests.map((r) => model.understand(r)));
    const after = model.metrics().llm;
    assert.equal(after.prefills - before.prefills, 1, 'the five newcomers were prefilled in one run');
    assert.ok(after.batchedSteps - before.batchedSteps >= 4, `batched steps: ${after.batchedSteps - before.batchedSteps}`);
    assert.equal(after.maxRows, 5);
    together.forEach((result, i) => {
      // Alone with a budget of 12, the answer stops at its eos or at 12; a smaller budget cuts it shorter.
      const limit = (requests[i] as { sampling: { maxNewTokens: number } }).sampling.maxNewTokens;
      assert.deepEqual(result.answerIds, (alone[i] as number[]).slice(0, limit), `request ${i}`);
    });
  });

  it('a request arriving mid-decode joins the running batch; generation and understanding mix', async () => {
    const solo = await model.generate({ prompt: 'a red circle', scale: 1, sampling: { temperature: 0 }, detokSampling: { temperature: 0 } });
    const soloText = await model.understand({ image: imageOf(4), prompt: 'late', sampling: greedy(10) });
    const before = model.metrics();
    let late: Promise<unknown> | undefined;
    const long = model.generate({
      prompt: 'a red circle',
      scale: 1,
      sampling: { temperature: 0 },
      detokSampling: { temperature: 0 },
      onProgress: (e) => {
        if (e.stage === 'decode' && e.done === 20) late = model.understand({ image: imageOf(4), prompt: 'late', sampling: greedy(10) });
      },
    });
    const result = await long;
    const lateResult = (await late) as Awaited<ReturnType<TarModel['understand']>>;
    const after = model.metrics();
    assert.deepEqual(result.image.tokens, solo.image.tokens);
    assert.deepEqual(result.image.vqCodes, solo.image.vqCodes);
    assert.deepEqual(lateResult.answerIds, soloText.answerIds);
    assert.equal(after.llm.prefills - before.llm.prefills, 2);
    assert.ok(after.llm.batchedSteps > before.llm.batchedSteps, 'the late request shared steps with the running one');
  });

  it('AR-DTok rows with conditions of different lengths (scales) are left-padded together', async () => {
    const inputs = [imageOf(5, 1), imageOf(6, 3), imageOf(7, 2)];
    const render = (image: ImageTokens) => model.renderImage({ ...image, seed: 1, detokSampling: { temperature: 0 } });
    const alone = [];
    for (const image of inputs) alone.push((await render(image)).vqCodes);
    const before = model.metrics().arDTok.prefills;
    const together = await Promise.all(inputs.map(render));
    assert.equal(model.metrics().arDTok.prefills - before, 1);
    assert.deepEqual(together.map((r) => r.vqCodes), alone);
  });

  it('concurrent generations share AR-DTok steps (two CFG rows each)', async () => {
    const before = model.metrics().arDTok;
    const seeds = [1, 2, 3];
    const results = await Promise.all(seeds.map((seed) => model.renderImage({ tokens: imageOf(seed).tokens, scale: 3, seed, detokSampling: { temperature: 0 } })));
    const after = model.metrics().arDTok;
    assert.ok(after.batchedSteps - before.batchedSteps >= 60);
    assert.equal(after.maxRows >= 6, true);
    for (const [i, seed] of seeds.entries()) {
      const alone = await model.renderImage({ tokens: imageOf(seed).tokens, scale: 3, seed, detokSampling: { temperature: 0 } });
      assert.deepEqual(results[i]?.vqCodes, alone.vqCodes);
    }
  });
});

describe('admission, cancellation and limits', () => {
  it('refuses with QueueFullError when the waiting queue is full', async () => {
    // Two rows in the batch (the least a decoder holds: a guided request takes two) and one place in the queue: of
    // five requests at once, two run, one waits, two are refused.
    const small = await TarModel.load({ bundleDir: TINY_BUNDLE, intraOpThreads: 1, maxBatch: 1, maxQueue: 1 });
    try {
      assert.equal(small.info().maxBatch, 2);
      const settled = await Promise.allSettled(
        [0, 1, 2, 3, 4].map((i) => small.understand({ image: imageOf(i), prompt: 'q', sampling: greedy(3) })),
      );
      assert.deepEqual(settled.slice(0, 3).map((s) => s.status), ['fulfilled', 'fulfilled', 'fulfilled']);
      for (const s of settled.slice(3)) {
        assert.equal(s.status, 'rejected');
        const reason = (s as PromiseRejectedResult).reason;
        assert.ok(reason instanceof QueueFullError && reason.code === 'QUEUE_FULL', String(reason));
      }
    } finally {
      await small.dispose();
    }
  });

  it('an abort mid-decode removes the request at the next step; its batch-mate finishes unchanged', async () => {
    const expected = await model.generate({ prompt: 'keep going', scale: 1, seed: 5 });
    const controller = new AbortController();
    let lastDone = 0;
    const cancelled = model.generate({
      prompt: 'stop me',
      scale: 1,
      seed: 1,
      signal: controller.signal,
      onProgress: (e) => {
        if (e.stage === 'decode') lastDone = e.done;
        if (e.stage === 'decode' && e.done === 5) controller.abort();
      },
    });
    const survivor = model.generate({ prompt: 'keep going', scale: 1, seed: 5 });
    await assert.rejects(cancelled, (e: unknown) => e instanceof CancelledError && e.code === 'CANCELLED');
    assert.equal(lastDone, 5, 'no token after the abort');
    const kept = await survivor;
    assert.deepEqual(kept.image.tokens, expected.image.tokens);
  });

  it('an abort while waiting in the queue rejects at once; an aborted signal is refused up front', async () => {
    const small = await TarModel.load({ bundleDir: TINY_BUNDLE, intraOpThreads: 1, maxBatch: 2 });
    try {
      const controller = new AbortController();
      const running = [1, 2].map((seed) => small.generate({ prompt: 'first', scale: 1, seed }));
      const waiting = small.generate({ prompt: 'second', scale: 1, seed: 3, signal: controller.signal });
      setImmediate(() => controller.abort());
      await assert.rejects(waiting, CancelledError);
      for (const result of await Promise.all(running)) assert.equal(result.image.tokens.length, 81);
      await assert.rejects(small.generate({ prompt: 'x', signal: AbortSignal.abort() }), CancelledError);
    } finally {
      await small.dispose();
    }
  });

  it('refuses prompts that do not fit llm.maxPositions with the answer budget', async () => {
    await assert.rejects(
      model.understand({ image: imageOf(1), prompt: 'q', sampling: { maxNewTokens: 1000 } }),
      (e: unknown) => e instanceof PromptTooLongError && e.code === 'PROMPT_TOO_LONG' && /more than llm\.maxPositions \(1024\)/.test(e.message),
    );
    const history = Array.from({ length: 20 }, () => ({ role: 'user' as const, text: 'x', image: imageOf(2, 1) }));
    await assert.rejects(model.generate({ prompt: 'q', history }), PromptTooLongError);
  });

  it('refuses bad arguments with InvalidRequestError', async () => {
    await assert.rejects(model.generate({ prompt: 'q', scale: 5 }), /scale must be one of 1, 2, 3, not 5/);
    await assert.rejects(model.generate({ prompt: 'q', sampling: { topP: 2 } }), InvalidRequestError);
    await assert.rejects(model.understand({ image: { tokens: [1], scale: 3 }, prompt: 'q' }), InvalidRequestError);
    await assert.rejects(model.generate({ prompt: 'q', seed: -1 }), InvalidRequestError);
  });

  it('dispose rejects waiting and running requests, and later ones', async () => {
    const doomed = await TarModel.load({ bundleDir: TINY_BUNDLE, intraOpThreads: 1, maxBatch: 1 });
    const pending = [doomed.generate({ prompt: 'a', scale: 1 }), doomed.generate({ prompt: 'b', scale: 1 })];
    const outcomes = Promise.allSettled(pending); // handled from the start: they reject during dispose
    await new Promise((resolve) => setImmediate(resolve));
    await doomed.dispose();
    await outcomes;
    await Promise.all(pending.map((p) => assert.rejects(p, ModelDisposedError)));
    await assert.rejects(doomed.generate({ prompt: 'c' }), (e: unknown) => e instanceof ModelDisposedError && e.code === 'MODEL_DISPOSED');
  });
});

describe('progress, timings and info', () => {
  it('reports stages in order and per-stage timings', async () => {
    const events: ProgressEvent[] = [];
    const result = await model.edit({ image: { bytes: imageA }, prompt: 'make it blue', scale: 3, seed: 3, onProgress: (e) => events.push(e) });
    const stages = [...new Set(events.map((e) => e.stage))];
    assert.deepEqual(stages, ['encode', 'prefill', 'decode', 'detokenize', 'vq-decode']);
    assert.deepEqual(events.filter((e) => e.stage === 'decode').at(-1), { stage: 'decode', done: 9, total: 9 });
    assert.deepEqual(events.filter((e) => e.stage === 'detokenize').at(-1), { stage: 'detokenize', done: 64, total: 64 });
    assert.equal(result.inputImageTokens?.scale, 3);
    const t = result.timings;
    assert.equal(t.decodeTokens, 9);
    for (const key of ['encode', 'prefill', 'decode', 'detokenize', 'vqDecode', 'ort', 'total'] as const) assert.ok(t[key] > 0, key);
    assert.ok(t.ort + t.outsideOrt + t.queued <= t.total + 1e-6);
  });

  it('describes the model', () => {
    const info = model.info();
    assert.equal(info.name, 'tiny-random');
    assert.equal(info.defaultScale, 2);
    assert.equal(info.imageSize, 64);
    assert.equal(info.defaults.text.maxNewTokens, 16);
    assert.equal(info.provider, 'cpu');
  });
});
