/**
 * Golden tests: the runtime against the PyTorch reference outputs of training/make_fixtures.py, on the tiny
 * random-weight bundle. Tolerances and conventions come from golden.json itself.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { type Bundle, loadBundle } from '../../src/model/bundle.ts';
import { DecoderBatcher, type DecodeJob } from '../../src/model/decoder.ts';
import { allocFloat, floatTensor, int64Tensor, rawFloatTensor, readFloat32, type Tensor } from '../../src/model/onnx-backend.ts';
import { argmax } from '../../src/model/sampling.ts';
import { TarModel, type Turn } from '../../src/model/index.ts';
import { assertClose, GOLDEN_DIR, llmPrefill, readJson, TINY_BUNDLE } from './helpers.ts';

let golden: any;
let bundle: Bundle;
let model: TarModel;
const images = new Map<string, Buffer>();

before(async () => {
  golden = await readJson(join(GOLDEN_DIR, 'golden.json'));
  assert.equal(golden.format, 'dialect-golden/1');
  for (const { file } of golden.images) images.set(file, await readFile(join(GOLDEN_DIR, file)));
  bundle = await loadBundle(TINY_BUNDLE, { intraOpThreads: 1 });
  model = await TarModel.load({ bundleDir: TINY_BUNDLE, intraOpThreads: 1 });
});

after(async () => {
  await bundle?.dispose();
  await model?.dispose();
});



describe('golden: TA-Tok', () => {
  it('encoder ids at every scale, exactly (PNG → pixels → ids)', async () => {
    for (const { image, scale, ids } of golden.encoder) {
      const tokens = await model.encodeImage(images.get(image) as Buffer, scale);
      assert.deepEqual(tokens, { tokens: ids, scale }, `${image} at scale ${scale}`);
    }
  });

  it('decoder features within tolerance', async () => {
    for (const { from, ids, features, summary } of golden.taTokDecoder) {
      const { outputs } = await bundle.graphs.taTokDecoder.run({ ids: int64Tensor(ids, [1, ids.length]) });
      const actual = readFloat32(outputs.features as Tensor);
      const tolerance = golden.tolerance.features;
      if (features !== undefined) assertClose(actual, features, tolerance, from);
      // Cases stored as a summary only: shape, the first values, and sums within the tolerance per element.
      assert.deepEqual(outputs.features?.dims, summary.shape);
      assertClose(actual.subarray(0, summary.first.length), summary.first, tolerance, `${from} first`);
      const sum = actual.reduce((a, v) => a + v, 0);
      const absSum = actual.reduce((a, v) => a + Math.abs(v), 0);
      assert.ok(Math.abs(sum - summary.sum) <= tolerance * actual.length, `${from} sum ${sum} vs ${summary.sum}`);
      assert.ok(Math.abs(absSum - summary.absSum) <= tolerance * actual.length, `${from} absSum`);
    }
  });
});

describe('golden: LLM', () => {
  it('prefill logits within tolerance', async () => {
    for (const { name, promptIds, logits, argmax: best } of golden.llmPrefill) {
      const actual = await llmPrefill(bundle, promptIds);
      assertClose(actual, logits, golden.tolerance.logits, name);
      assert.equal(argmax(actual), best);
    }
  });

  it('understand: image bytes → greedy answer ids exactly', async () => {
    const u = golden.understand;
    const result = await model.understand({
      image: { bytes: images.get(u.image) as Buffer },
      prompt: u.question,
      scale: u.scale,
      sampling: { temperature: 0, maxNewTokens: u.maxNewTokens },
    });
    assert.deepEqual(result.imageTokens, { tokens: u.imageIds, scale: u.scale });
    assert.deepEqual(result.answerIds, u.answerIds);
    assert.equal(result.timings.decodeTokens, u.answerIds.length);
  });

  it('multi-turn history: prefill logits and greedy answer ids exactly', async () => {
    const h = golden.history;
    assertClose(await llmPrefill(bundle, h.promptIds), h.prefillLogits, golden.tolerance.logits, 'history prefill');
    const turns: Turn[] = h.turns.map((t: any) => ({
      role: t.role,
      text: t.text,
      ...(t.image === undefined ? {} : { image: { tokens: t.imageIds, scale: t.scale } }),
    }));
    const last = turns.pop() as Turn;
    const result = await model.understand({
      prompt: last.text as string,
      history: turns,
      sampling: { temperature: 0, maxNewTokens: h.maxNewTokens },
    });
    assert.equal(result.imageTokens, undefined);
    assert.deepEqual(result.answerIds, h.answerIds);
  });

  it('two left-padded rows prefilled together: logits within tolerance and greedy ids exactly', async () => {
    const b = golden.batchLeftPad;
    const m = bundle.manifest;
    const batcher = new DecoderBatcher('llm', bundle.graphs.llm, {
      layers: m.llm.layers,
      kvHeads: m.llm.kvHeads,
      headDim: m.llm.headDim,
      dtype: 'float32',
      padId: b.pad,
    });
    const prefill: Float32Array[] = [];
    const answers: number[][] = [[], []];
    const job = (row: number): DecodeJob => ({
      rows: [{ inputIds: b.promptIds[row] }],
      step(logits, info) {
        const l = logits[0] as Float32Array;
        if (info.kind === 'prefill') prefill[row] = Float32Array.from(l);
        const token = argmax(l);
        (answers[row] as number[]).push(token);
        return (answers[row] as number[]).length >= b.maxNewTokens ? null : token;
      },
    });
    await Promise.all([batcher.run(job(0)), batcher.run(job(1))]);
    assert.equal(batcher.stats.prefills, 1, 'both rows were prefilled in one run');
    assert.equal(batcher.stats.batchedSteps, b.maxNewTokens - 1);
    for (const row of [0, 1]) assertClose(prefill[row] as Float32Array, b.prefillLogits[row], golden.tolerance.logits, `row ${row}`);
    assert.deepEqual(answers, b.answerIds);
  });
});

describe('golden: generation', () => {
  it('AR-DTok prefill logits (cond and uncond rows) within tolerance', async () => {
    const g = golden.generate;
    const m = bundle.manifest;
    const { outputs } = await bundle.graphs.taTokDecoder.run({ ids: int64Tensor(g.imageIds, [1, g.imageIds.length]) });
    const cond = readFloat32(outputs.features as Tensor);
    const feeds: Record<string, Tensor> = {
      input_ids: int64Tensor([], [2, 0]),
      cond: floatTensor('float32', Float32Array.from([...cond, ...new Float32Array(cond.length)]), [2, g.imageIds.length, m.arDTok.condDim]),
      attention_mask: int64Tensor(new Array(2 * g.imageIds.length).fill(1), [2, g.imageIds.length]),
      position_ids: int64Tensor([...g.imageIds.keys(), ...g.imageIds.keys()], [2, g.imageIds.length]),
    };
    for (let i = 0; i < m.arDTok.layers; i++) {
      for (const kind of ['key', 'value']) {
        feeds[`past_key_values.${i}.${kind}`] = rawFloatTensor('float32', allocFloat('float32', 0), [2, m.arDTok.kvHeads, 0, m.arDTok.headDim]);
      }
    }
    const logits = readFloat32((await bundle.graphs.arDTok.run(feeds)).outputs.logits as Tensor);
    assertClose(logits.subarray(0, 64), g.arDTokPrefillLogits.cond, golden.tolerance.logits, 'cond');
    assertClose(logits.subarray(64), g.arDTokPrefillLogits.uncond, golden.tolerance.logits, 'uncond');
  });

  it('greedy generate: image ids, VQ codes exactly, pixels within 1/255', async () => {
    const g = golden.generate;
    const result = await model.generate({
      prompt: g.prompt,
      scale: g.scale,
      sampling: { temperature: 0 },
      detokSampling: { temperature: 0, cfgScale: g.cfgScale },
    });
    assert.deepEqual(result.image.tokens, g.imageIds);
    assert.deepEqual(result.image.vqCodes, g.codes);
    assert.deepEqual([result.image.width, result.image.height, result.image.scale], [64, 64, g.scale]);
    const actual = await sharp(result.image.png).raw().toBuffer({ resolveWithObject: true });
    const expected = await sharp(join(GOLDEN_DIR, g.outputPng)).removeAlpha().raw().toBuffer();
    assert.equal(actual.info.channels, 3);
    assertClose(actual.data, [...expected], 1, 'pixels (uint8)');
  });

  it('renderImage reproduces the generated pixels from the stored tokens', async () => {
    const g = golden.generate;
    const rendered = await model.renderImage({ tokens: g.imageIds, scale: g.scale, detokSampling: { temperature: 0 } });
    assert.deepEqual(rendered.vqCodes, g.codes);
  });
});
