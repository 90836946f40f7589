/**
 * ThreadedTarModel: the same answers, errors, progress and cancellation as an in-thread TarModel, with inference in
 * a worker thread (src/model/thread/), and a clear failure when that thread dies.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  BundleError,
  CancelledError,
  InferenceError,
  InvalidImageError,
  InvalidRequestError,
  ModelDisposedError,
  type ProgressEvent,
  PromptTooLongError,
  TarModel,
  ThreadedTarModel,
} from '../../src/model/index.ts';
import { bundleCopy, GOLDEN_DIR, TINY_BUNDLE } from './helpers.ts';

let local: TarModel;
let threaded: ThreadedTarModel;
let imageA: Buffer;

before(async () => {
  imageA = await readFile(join(GOLDEN_DIR, 'image_a.png'));
  local = await TarModel.load({ bundleDir: TINY_BUNDLE, intraOpThreads: 1 });
  threaded = await ThreadedTarModel.load({ bundleDir: TINY_BUNDLE, intraOpThreads: 1 });
});

after(async () => {
  await local?.dispose();
  await threaded?.dispose();
});

/** A result without its timings (wall times differ from run to run). */
const answer = ({ timings: _t, ...rest }: { timings: unknown }) => rest;

describe('ThreadedTarModel', () => {
  it('reports the same manifest and info as the model in this thread', () => {
    assert.deepEqual(threaded.manifest, local.manifest);
    assert.deepEqual(threaded.info(), local.info());
  });

  it('gives the same answers, tokens, codes and PNG bytes for the same requests and seeds', async () => {
    const tokens = await threaded.encodeImage(imageA, 2);
    assert.deepEqual(tokens, await local.encodeImage(imageA, 2));
    const viewed = await threaded.encodeImageViews(imageA, 3, [2, 1]);
    assert.deepEqual(viewed, await local.encodeImageViews(imageA, 3, [2, 1]));
    assert.deepEqual(viewed, { ...(await local.encodeImage(imageA, 3)), views: [tokens, await local.encodeImage(imageA, 1)] });

    const question = { image: { bytes: imageA }, prompt: 'What color is the circle?', seed: 3, sampling: { temperature: 1, maxNewTokens: 8 } };
    assert.deepEqual(answer(await threaded.understand(question)), answer(await local.understand(question)));

    const generate = { prompt: 'a red circle', scale: 3, seed: 11 };
    const made = await threaded.generate(generate);
    assert.ok(Buffer.isBuffer(made.image.png), 'a PNG arrives as a Buffer');
    assert.deepEqual(answer(made), answer(await local.generate(generate)));

    const edit = { prompt: 'make the circle blue', image: tokens, scale: 3, seed: 5 };
    assert.deepEqual(answer(await threaded.edit(edit)), answer(await local.edit(edit)));

    const render = { tokens: made.image.tokens, scale: 3, seed: 11 };
    const rendered = await threaded.renderImage(render);
    assert.ok(Buffer.isBuffer(rendered.png));
    assert.ok(rendered.png.equals(made.image.png));
  });

  it('forwards progress events in order and keeps its metrics current', async () => {
    const events: ProgressEvent[] = [];
    const before = threaded.metrics().llm.steps;
    await threaded.generate({ prompt: 'a blue square', scale: 3, seed: 1, onProgress: (event) => events.push(event) });
    const stages = [...new Set(events.map((event) => event.stage))];
    assert.deepEqual(stages, ['prefill', 'decode', 'detokenize', 'vq-decode']);
    const decode = events.filter((event) => event.stage === 'decode');
    assert.deepEqual(decode.map((event) => event.done), decode.map((_, i) => i + 1));
    assert.ok(threaded.metrics().llm.steps > before, 'the LLM step counter moved');
  });

  it('rebuilds the runtime errors with their class, code and fields', async () => {
    await assert.rejects(threaded.encodeImage(Buffer.from('not an image')), (error: unknown) => {
      assert.ok(error instanceof InvalidImageError);
      assert.equal(error.code, 'INVALID_IMAGE');
      return true;
    });
    await assert.rejects(threaded.generate({ prompt: 'a red circle', scale: 7 }), InvalidRequestError);
    const long = 'a red circle and '.repeat(400);
    const [inThread] = await Promise.allSettled([local.generate({ prompt: long })]);
    await assert.rejects(threaded.generate({ prompt: long }), (error: unknown) => {
      assert.ok(error instanceof PromptTooLongError);
      assert.ok(inThread.status === 'rejected' && inThread.reason instanceof PromptTooLongError);
      assert.equal(error.message, inThread.reason.message);
      assert.equal(error.promptTokens, inThread.reason.promptTokens);
      assert.equal(error.maxPositions, inThread.reason.maxPositions);
      return true;
    });
  });

  it('cancels a request in the thread when its signal aborts, before or while it runs', async () => {
    const aborted = AbortSignal.abort();
    await assert.rejects(threaded.generate({ prompt: 'a red circle', signal: aborted }), CancelledError);

    const controller = new AbortController();
    const running = threaded.generate({
      prompt: 'a red circle',
      scale: 1,
      signal: controller.signal,
      onProgress: (event) => {
        if (event.stage === 'decode' && event.done === 3) controller.abort();
      },
    });
    await assert.rejects(running, CancelledError);
    // The thread is still serving.
    assert.equal((await threaded.generate({ prompt: 'a red circle', scale: 3, seed: 2 })).image.tokens.length, 9);
  });

  it('fails pending and later requests with INFERENCE_FAILED when the thread dies, and MODEL_DISPOSED after dispose', async () => {
    const doomed = await ThreadedTarModel.load({ bundleDir: TINY_BUNDLE, intraOpThreads: 1 });
    const pending = doomed.generate({ prompt: 'a red circle', scale: 1, seed: 1 });
    await doomed.terminate();
    await assert.rejects(pending, InferenceError);
    await assert.rejects(doomed.generate({ prompt: 'a red circle' }), InferenceError);

    const closing = await ThreadedTarModel.load({ bundleDir: TINY_BUNDLE, intraOpThreads: 1 });
    await closing.dispose();
    await assert.rejects(closing.understand({ prompt: 'hello' }), ModelDisposedError);
    await closing.dispose(); // idempotent
  });

  it('reports a bundle that cannot be opened as BundleError, with load progress on the way', async () => {
    await assert.rejects(ThreadedTarModel.load({ bundleDir: join(TINY_BUNDLE, 'no-such-folder') }), BundleError);
    const events: string[] = [];
    const model = await ThreadedTarModel.load({ bundleDir: TINY_BUNDLE, intraOpThreads: 1, onLoadProgress: (event) => events.push(JSON.stringify(event)) });
    await model.dispose();
    assert.ok(events.length > 0, 'load progress arrived');
  });
});

describe('self-check in the model thread', () => {
  it("loads the judges from the judge module's URL in the thread and checks as an in-thread model does", async () => {
    const copy = await bundleCopy((m) => {
      m.selfCheck = { judge: 'never', question: 'Describe the image.', candidates: 2, temperature: 1 };
    });
    const judgeModule = new URL('./never-judge.ts', import.meta.url).href;
    const inThread = await ThreadedTarModel.load({ bundleDir: copy.dir, intraOpThreads: 1, judgeModule });
    const here = await TarModel.load({ bundleDir: copy.dir, intraOpThreads: 1, judgeModule });
    try {
      const request = { prompt: 'a red circle', seed: 2, selfCheck: true };
      const [a, b] = [await inThread.generate(request), await here.generate(request)];
      assert.deepEqual(a.selfCheck, { written: 3, chosen: 0, passed: false });
      assert.deepEqual(answer(a), answer(b));
    } finally {
      await inThread.dispose();
      await here.dispose();
      await copy.cleanup();
    }
  });
});
