/**
 * Self-check (src/model/self-check.ts, TarModel's generate and edit with `selfCheck: true`): the model reads the image
 * it wrote with the bundle's question, a judge given by name decides, and on a failed check the model writes the
 * bundle's number of sampled candidates and keeps the first that passes, else its first image. On the random tiny
 * bundle the readings mean nothing; a scripted judge decides, and what is checked is which image is kept, what the
 * judge is asked, that nothing changes without the flag, and that a model that cannot check refuses it.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BundleError, InvalidRequestError, type JudgeRequest, TarModel } from '../../src/model/index.ts';
import { loadJudges } from '../../src/model/self-check.ts';
import { bundleCopy, GOLDEN_DIR } from './helpers.ts';

const PROMPT = 'a red circle';
const CHECK = { judge: 'scripted', question: 'Describe the image.', candidates: 3, temperature: 1 };

describe('self-check of written images', () => {
  let model: TarModel;
  let unjudged: TarModel;
  let cleanup: () => Promise<void>;
  let bytes: Uint8Array;
  /** The judge's answers, one per call, in order; every call is recorded. */
  let verdicts: boolean[] = [];
  const calls: { request: JudgeRequest; reading: string }[] = [];

  before(async () => {
    const copy = await bundleCopy((m) => {
      m.selfCheck = CHECK;
    });
    cleanup = copy.cleanup;
    const scripted = (request: JudgeRequest, reading: string) => {
      calls.push({ request, reading });
      return verdicts.shift() ?? false;
    };
    model = await TarModel.load({ bundleDir: copy.dir, intraOpThreads: 1, judges: { scripted } });
    unjudged = await TarModel.load({ bundleDir: copy.dir, intraOpThreads: 1 });
    bytes = await readFile(join(GOLDEN_DIR, 'image_a.png'));
  });
  after(async () => {
    await model?.dispose();
    await unjudged?.dispose();
    await cleanup?.();
  });
  const judged = (...answers: boolean[]) => {
    verdicts = answers;
    calls.length = 0;
  };

  it('writes once and reports nothing unless the request asks for the check', async () => {
    judged(false);
    const plain = await model.generate({ prompt: PROMPT, seed: 3 });
    assert.equal(plain.selfCheck, undefined);
    assert.equal(calls.length, 0);
  });

  it('keeps the first image when its reading passes, and asks the judge about the prompt and that reading', async () => {
    const plain = await model.generate({ prompt: PROMPT, seed: 3 });
    judged(true);
    const checked = await model.generate({ prompt: PROMPT, seed: 3, selfCheck: true });
    assert.deepEqual(checked.selfCheck, { written: 1, chosen: 0, passed: true });
    assert.deepEqual(checked.image.tokens, plain.image.tokens);
    assert.equal(calls.length, 1);
    assert.deepEqual(calls[0]?.request, { task: 'generate', prompt: PROMPT });
    const reading = await model.understand({ image: plain.image, prompt: CHECK.question, sampling: { temperature: 0 }, viewScales: [] });
    assert.equal(calls[0]?.reading, reading.text, "the judge reads the model's own greedy reading of the tokens");
  });

  it('on a failed check keeps the first candidate that passes, the same one for the same seed', async () => {
    const plain = await model.generate({ prompt: PROMPT, seed: 3 });
    judged(false, false, true, true);
    const checked = await model.generate({ prompt: PROMPT, seed: 3, selfCheck: true });
    assert.deepEqual(checked.selfCheck, { written: 4, chosen: 2, passed: true });
    assert.equal(calls.length, 3, 'the first image, then the candidates in order until one passes');
    assert.notDeepEqual(checked.image.tokens, plain.image.tokens, 'a sampled candidate, not the first image');
    judged(false, false, true, true);
    const again = await model.generate({ prompt: PROMPT, seed: 3, selfCheck: true });
    assert.deepEqual(again.image.tokens, checked.image.tokens);
    assert.deepEqual(again.image.png, checked.image.png, 'only the kept image is rendered, with the seed as always');
  });

  it('keeps the first image when no candidate passes', async () => {
    const plain = await model.generate({ prompt: PROMPT, seed: 5 });
    judged(false, false, false, false);
    const checked = await model.generate({ prompt: PROMPT, seed: 5, selfCheck: true });
    assert.deepEqual(checked.selfCheck, { written: 4, chosen: 0, passed: false });
    assert.deepEqual(checked.image.tokens, plain.image.tokens);
  });

  it("gives the judge an edit's instruction and the model's reading of the input", async () => {
    judged(true);
    const checked = await model.edit({ image: { bytes }, prompt: 'make the circle blue', seed: 1, selfCheck: true });
    assert.deepEqual(checked.selfCheck, { written: 1, chosen: 0, passed: true });
    const input = await model.understand({
      image: checked.inputImageTokens as NonNullable<typeof checked.inputImageTokens>,
      prompt: CHECK.question,
      sampling: { temperature: 0 },
      viewScales: [],
    });
    assert.deepEqual(calls[0]?.request, { task: 'edit', prompt: 'make the circle blue', input: input.text });
  });

  it("is not refused for a full queue by its own candidates and readings", async () => {
    // Two rows in the batch and no place in the queue: the request's first job fits, then its candidates and
    // readings, which would fill the queue many times over, are parts of a request already let in.
    const copy = await bundleCopy((m) => {
      m.selfCheck = CHECK;
    });
    const small = await TarModel.load({ bundleDir: copy.dir, intraOpThreads: 1, maxBatch: 1, maxQueue: 0, judges: { scripted: () => false } });
    try {
      const checked = await small.generate({ prompt: PROMPT, seed: 3, selfCheck: true });
      assert.deepEqual(checked.selfCheck, { written: 4, chosen: 0, passed: false });
    } finally {
      await small.dispose();
      await copy.cleanup();
    }
  });

  it("leaves the queue's places to other requests: its candidates wait without being counted", async () => {
    // Two rows in the batch, one place in the queue. When the check fails, its three candidates are queued (one runs,
    // two wait); a question asked then still finds the queue's place free.
    const copy = await bundleCopy((m) => {
      m.selfCheck = CHECK;
    });
    let question: Promise<unknown> | undefined;
    const small = await TarModel.load({
      bundleDir: copy.dir,
      intraOpThreads: 1,
      maxBatch: 1,
      maxQueue: 1,
      judges: {
        scripted: () => {
          question ??= new Promise((resolve) => setImmediate(resolve)).then(() =>
            small.understand({ image: { bytes }, prompt: 'What color is the circle?', sampling: { temperature: 0, maxNewTokens: 3 } }),
          );
          return false;
        },
      },
    });
    try {
      const checked = await small.generate({ prompt: PROMPT, seed: 3, selfCheck: true });
      assert.equal(checked.selfCheck?.written, 4);
      await question;
    } finally {
      await small.dispose();
      await copy.cleanup();
    }
  });

  it('refuses a check, before any work, when the model was not given its judge or the bundle has no self-check', async () => {
    assert.equal(model.info().selfCheck, true);
    assert.equal(unjudged.info().selfCheck, false);
    const before = unjudged.metrics().llm.rowSteps;
    await assert.rejects(unjudged.generate({ prompt: PROMPT, seed: 3, selfCheck: true }), (error: unknown) =>
      error instanceof InvalidRequestError && /not given its judge "scripted"/.test(error.message));
    assert.equal(unjudged.metrics().llm.rowSteps, before, 'nothing was decoded');
    const plain = await unjudged.generate({ prompt: PROMPT, seed: 3 });
    assert.equal(plain.selfCheck, undefined);

    const copy = await bundleCopy((m) => {
      delete m.selfCheck;
    });
    const without = await TarModel.load({ bundleDir: copy.dir, intraOpThreads: 1, judges: { scripted: () => true } });
    try {
      assert.equal(without.info().selfCheck, false);
      await assert.rejects(without.edit({ image: { bytes }, prompt: 'make the circle blue', selfCheck: true }), (error: unknown) =>
        error instanceof InvalidRequestError && /no self-check/.test(error.message));
    } finally {
      await without.dispose();
      await copy.cleanup();
    }
  });
});

describe('judge modules', () => {
  /** A module of the given source, imported from a data: URL (what TarModelOptions.judgeModule names). */
  const moduleOf = (source: string) => `data:text/javascript,${encodeURIComponent(source)}`;

  it("loads a module's judges", async () => {
    const judges = await loadJudges(moduleOf('export const judges = { always: () => true };'));
    assert.deepEqual(Object.keys(judges), ['always']);
    assert.equal(judges.always?.({ task: 'generate', prompt: 'a red circle' }, 'a red circle.'), true);
  });

  it('refuses with BundleError a module that cannot be imported, exports no judges or a judge that is not a function', async () => {
    const cases: [string, RegExp][] = [
      [new URL('./no-such-judge-module.ts', import.meta.url).href, /cannot be imported/],
      [moduleOf('export const judge = () => true;'), /exports no "judges" object/],
      [moduleOf('export const judges = 3;'), /exports no "judges" object/],
      [moduleOf('export const judges = { shapes: "yes" };'), /judges\.shapes is not a function/],
    ];
    for (const [url, message] of cases) {
      await assert.rejects(loadJudges(url), (error: unknown) => error instanceof BundleError && message.test(error.message), url);
    }
  });

  it('fails the load, not the first checked request, when the judge module is broken', async () => {
    const copy = await bundleCopy((m) => {
      m.selfCheck = CHECK;
    });
    try {
      await assert.rejects(
        TarModel.load({ bundleDir: copy.dir, intraOpThreads: 1, judgeModule: moduleOf('export default {};') }),
        (error: unknown) => error instanceof BundleError && /exports no "judges" object/.test(error.message),
      );
    } finally {
      await copy.cleanup();
    }
  });
});
