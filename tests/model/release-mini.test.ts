/**
 * The released Tar layouts, end to end: tests/fixtures/tar-release-mini/bundle was written by
 * training/convert_tar.py (unchanged) from random checkpoints in the published file formats and tensor layouts at
 * reduced size (training/make_release_fixtures.py), and golden/golden.json holds the PyTorch reference pipeline's
 * outputs on it. The runtime must reproduce them through the same code path as the miniature: bare image tokens in
 * the user turn (`templates.image` = "{tokens}"), Qwen2's tokenizer layout, tied embeddings, a vocabulary padded
 * past the tokenizer, LlamaGen's AR-DTok and VQ decoder, CFG 4.0, and editing marked experimental.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { type Bundle, loadBundle } from '../../src/model/bundle.ts';
import { allocFloat, int64Tensor, rawFloatTensor, readFloat32, type Tensor } from '../../src/model/onnx-backend.ts';
import { argmax } from '../../src/model/sampling.ts';
import { TarModel, type Turn } from '../../src/model/index.ts';
import { readJson } from './helpers.ts';

const ROOT = fileURLToPath(new URL('../fixtures/tar-release-mini/', import.meta.url));
const BUNDLE = join(ROOT, 'bundle');
const GOLDEN = join(ROOT, 'golden');

let golden: any;
let manifest: any;
let bundle: Bundle;
let model: TarModel;
const images = new Map<string, Buffer>();

before(async () => {
  golden = await readJson(join(GOLDEN, 'golden.json'));
  manifest = await readJson(join(BUNDLE, 'manifest.json'));
  for (const { file } of golden.images) images.set(file, await readFile(join(GOLDEN, file)));
  bundle = await loadBundle(BUNDLE, { intraOpThreads: 1 });
  model = await TarModel.load({ bundleDir: BUNDLE, intraOpThreads: 1 });
});

after(async () => {
  await bundle?.dispose();
  await model?.dispose();
});

function assertClose(actual: ArrayLike<number>, expected: readonly number[], tolerance: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs((actual[i] as number) - (expected[i] as number));
    if (!(d <= worst)) {
      worst = d;
      at = i;
    }
  }
  assert.ok(worst <= tolerance, `${what}: |Δ| = ${worst} at ${at} exceeds ${tolerance}`);
}

async function llmPrefill(ids: number[]): Promise<Float32Array> {
  const { llm } = bundle.manifest;
  const feeds: Record<string, Tensor> = {
    input_ids: int64Tensor(ids, [1, ids.length]),
    attention_mask: int64Tensor(ids.map(() => 1), [1, ids.length]),
    position_ids: int64Tensor(ids.map((_, i) => i), [1, ids.length]),
  };
  for (let i = 0; i < llm.layers; i++) {
    for (const kind of ['key', 'value']) {
      feeds[`past_key_values.${i}.${kind}`] = rawFloatTensor('float32', allocFloat('float32', 0), [1, llm.kvHeads, 0, llm.headDim]);
    }
  }
  const { outputs } = await bundle.graphs.llm.run(feeds);
  return readFloat32(outputs.logits as Tensor);
}

describe('released layout: the converted manifest', () => {
  it('follows the released conventions and reads its ids from the tokenizer', () => {
    assert.equal(manifest.templates.image, '{tokens}');
    assert.deepEqual(manifest.experimental, ['edit']);
    assert.deepEqual(model.info().experimental, ['edit']);
    assert.equal(manifest.templates.imageAnswerPrefix, '<im_start><S{k}>');
    assert.equal(manifest.chat.system, 'You are a helpful assistant.');
    assert.equal(manifest.sampling.detok.cfgScale, 4);
    const tok = bundle.tokenizer;
    assert.equal(tok.tokenToId('<im_start>'), manifest.tokens.imStart);
    assert.equal(tok.tokenToId('<S2>'), manifest.tokens.scaleTokens[2]);
    assert.equal(tok.tokenToId('<I0>'), manifest.tokens.imageBase);
    assert.equal(tok.tokenToId(`<I${manifest.tokens.imageCount - 1}>`), manifest.tokens.imageBase + manifest.tokens.imageCount - 1);
    assert.deepEqual(manifest.tokens.eos, [tok.tokenToId('<|im_end|>'), tok.tokenToId('<|endoftext|>')]);
    // Qwen2 pads its embedding table past the tokenizer: the logits are wider than the token list.
    assert.ok(manifest.llm.vocabSize > manifest.tokens.imageBase + manifest.tokens.imageCount);
    // The pooled grids floor like avg_pool2d (7 → 3 at scale 2, as 27 → 13 in the release).
    assert.deepEqual(manifest.scales.map((s: any) => s.grid), [7, 3, 2]);
  });

  it('tokenizes like the reference (Qwen2 tokenizer.json layout)', () => {
    for (const { text, ids } of golden.tokenizer) assert.deepEqual(bundle.tokenizer.encode(text), ids, JSON.stringify(text));
  });
});

describe('released layout: TA-Tok', () => {
  it('encoder ids at every scale, exactly', async () => {
    for (const { image, scale, ids } of golden.encoder) {
      assert.deepEqual(await model.encodeImage(images.get(image) as Buffer, scale), { tokens: ids, scale }, `${image}@${scale}`);
    }
  });

  it('decoder features within tolerance', async () => {
    for (const { from, ids, features, summary } of golden.taTokDecoder) {
      const { outputs } = await bundle.graphs.taTokDecoder.run({ ids: int64Tensor(ids, [1, ids.length]) });
      const actual = readFloat32(outputs.features as Tensor);
      if (features !== undefined) assertClose(actual, features, golden.tolerance.features, from);
      assert.deepEqual(outputs.features?.dims, summary.shape);
      assertClose(actual.subarray(0, summary.first.length), summary.first, golden.tolerance.features, `${from} first`);
      const sum = actual.reduce((a, v) => a + v, 0);
      assert.ok(Math.abs(sum - summary.sum) <= golden.tolerance.features * actual.length, `${from} sum`);
    }
  });
});

describe('released layout: LLM', () => {
  it('prefill logits within tolerance', async () => {
    for (const { name, promptIds, logits, argmax: best } of golden.llmPrefill) {
      const actual = await llmPrefill(promptIds);
      assertClose(actual, logits, golden.tolerance.logits, name);
      assert.equal(argmax(actual), best);
    }
  });

  it('understand: bare image tokens in the user turn, greedy answer ids exactly', async () => {
    const u = golden.understand;
    const result = await model.understand({
      image: { bytes: images.get(u.image) as Buffer },
      prompt: u.question,
      scale: u.scale,
      sampling: { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, maxNewTokens: u.maxNewTokens },
    });
    assert.deepEqual(result.imageTokens, { tokens: u.imageIds, scale: u.scale });
    assert.deepEqual(result.answerIds, u.answerIds);
  });

  it('multi-turn history: greedy answer ids exactly', async () => {
    const h = golden.history;
    assertClose(await llmPrefill(h.promptIds), h.prefillLogits, golden.tolerance.logits, 'history prefill');
    const turns: Turn[] = h.turns.map((t: any) => ({
      role: t.role,
      text: t.text,
      ...(t.image === undefined ? {} : { image: { tokens: t.imageIds, scale: t.scale } }),
    }));
    const last = turns.pop() as Turn;
    const result = await model.understand({
      prompt: last.text as string,
      history: turns,
      sampling: { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, maxNewTokens: h.maxNewTokens },
    });
    assert.deepEqual(result.answerIds, h.answerIds);
  });
});

describe('released layout: generation and editing', () => {
  const greedy = { temperature: 0, topK: 0, topP: 1 };

  it('generate: image ids and LlamaGen AR-DTok codes exactly (CFG 4), VQ-16 pixels within 1/255', async () => {
    const g = golden.generate;
    const result = await model.generate({
      prompt: g.prompt,
      scale: g.scale,
      sampling: greedy,
      detokSampling: { ...greedy, cfgScale: g.cfgScale },
    });
    assert.deepEqual(result.image.tokens, g.imageIds);
    assert.deepEqual(result.image.vqCodes, g.codes);
    const size = manifest.vq.outputSize;
    assert.deepEqual([result.image.width, result.image.height], [size, size]);
    const actual = await sharp(result.image.png).raw().toBuffer();
    const expected = await sharp(join(GOLDEN, g.outputPng)).removeAlpha().raw().toBuffer();
    assertClose(actual, [...expected], 1, 'pixels (uint8)');
  });

  it('edit (experimental): the miniature\'s path, greedy image ids and codes exactly', async () => {
    const e = golden.edit;
    const result = await model.edit({
      image: { bytes: images.get(e.image) as Buffer },
      imageScale: e.imageScale,
      prompt: e.prompt,
      scale: e.scale,
      sampling: greedy,
      detokSampling: { ...greedy, cfgScale: e.cfgScale },
    });
    assert.deepEqual(result.inputImageTokens, { tokens: e.inputImageIds, scale: e.imageScale });
    assert.deepEqual(result.image.tokens, e.imageIds);
    assert.deepEqual(result.image.vqCodes, e.codes);
  });
});
