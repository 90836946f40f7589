import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidRequestError } from '../../src/model/errors.ts';
import { Rng } from '../../src/model/random.ts';
import {
  AllowedRange,
  argmax,
  createPipeline,
  ForcedToken,
  mixCfg,
  RepetitionPenalty,
  resolveSettings,
  sampleMultinomial,
  Temperature,
  TopK,
  TopP,
} from '../../src/model/sampling.ts';

const row = (...values: number[]) => Float32Array.from(values);
const finite = (logits: Float32Array) => [...logits.keys()].filter((i) => Number.isFinite(logits[i]));

describe('logits processors', () => {
  it('repetition penalty divides positive and multiplies negative logits of seen ids, once each', () => {
    const p = new RepetitionPenalty(2, [0, 1, 1]);
    const logits = row(4, -4, 3);
    p.apply(logits);
    assert.deepEqual([...logits], [2, -8, 3]);
    p.observe(2);
    const again = row(4, -4, 3);
    p.apply(again);
    assert.deepEqual([...again], [2, -8, 1.5]);
  });

  it('allowed range masks everything outside [start, end)', () => {
    const logits = row(1, 2, 3, 4, 5);
    new AllowedRange(1, 3).apply(logits);
    assert.deepEqual(finite(logits), [1, 2]);
    assert.equal(argmax(logits), 2);
  });

  it('forced token leaves only that token', () => {
    const logits = row(9, 1, 2);
    new ForcedToken(1).apply(logits);
    assert.deepEqual(finite(logits), [1]);
  });

  it('temperature divides logits', () => {
    const logits = row(2, -4);
    new Temperature(0.5).apply(logits);
    assert.deepEqual([...logits], [4, -8]);
  });

  it('top-k keeps the k largest and ties with the k-th', () => {
    const logits = row(1, 5, 3, 3, 0, 4);
    new TopK(3).apply(logits);
    assert.deepEqual(finite(logits), [1, 2, 3, 5]);
    const big = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i * 12.9898) * 43758.5453 % 1);
    const expected = [...big.keys()].sort((a, b) => (big[b] as number) - (big[a] as number)).slice(0, 10).sort((a, b) => a - b);
    new TopK(10).apply(big);
    assert.deepEqual(finite(big), expected);
  });

  it('top-p keeps the smallest most-likely set reaching p', () => {
    // probabilities 0.5, 0.25, 0.125, 0.125
    const logits = row(Math.log(0.5), Math.log(0.25), Math.log(0.125), Math.log(0.125));
    const a = Float32Array.from(logits);
    new TopP(0.7).apply(a);
    assert.deepEqual(finite(a), [0, 1]);
    const b = Float32Array.from(logits);
    new TopP(0.5).apply(b);
    assert.deepEqual(finite(b), [0]);
    const c = Float32Array.from(logits);
    new TopP(0.8).apply(c); // the two tied at 0.125 are kept together
    assert.deepEqual(finite(c), [0, 1, 2, 3]);
  });

  it('top-p agrees with a sort-based reference on random rows', () => {
    const rng = new Rng(3);
    for (let trial = 0; trial < 50; trial++) {
      const n = 50 + (rng.nextUint32() % 500);
      const logits = Float32Array.from({ length: n }, () => (rng.nextFloat() - 0.5) * 10);
      const p = 0.05 + rng.nextFloat() * 0.9;
      const max = Math.max(...logits);
      const probs = [...logits].map((v) => Math.exp(v - max));
      const sum = probs.reduce((a, b) => a + b, 0);
      const order = [...probs.keys()].sort((a, b) => (probs[b] as number) - (probs[a] as number));
      const keep = new Set<number>();
      let acc = 0;
      for (const i of order) {
        keep.add(i);
        acc += (probs[i] as number) / sum;
        if (acc >= p) break;
      }
      const actual = Float32Array.from(logits);
      new TopP(p).apply(actual);
      assert.deepEqual(finite(actual), [...keep].sort((a, b) => a - b), `trial ${trial}`);
    }
  });

  it('CFG mixes uncond + scale · (cond − uncond) into the conditional row', () => {
    const cond = row(1, 2);
    mixCfg(cond, row(0, 4), 3);
    assert.deepEqual([...cond], [3, -2]);
  });
});

describe('samplers', () => {
  it('argmax takes the first of equal maxima', () => {
    assert.equal(argmax(row(1, 3, 3)), 1);
  });

  it('multinomial follows the distribution and never picks a masked token', () => {
    const rng = new Rng(11);
    const counts = [0, 0, 0];
    for (let i = 0; i < 30000; i++) counts[sampleMultinomial(row(Math.log(0.2), -Infinity, Math.log(0.8)), rng)]! += 1;
    assert.equal(counts[1], 0);
    assert.ok(Math.abs((counts[2] as number) / 30000 - 0.8) < 0.015, String(counts));
  });

  it('a pipeline with a seed repeats its choices; temperature 0 is greedy', () => {
    const settings = { temperature: 1, topK: 0, topP: 1 };
    const run = (seed: number) => {
      const pipeline = createPipeline({ settings, rng: new Rng(seed) });
      return Array.from({ length: 50 }, () => pipeline.next(row(0, 0.5, 1, 0.2)));
    };
    assert.deepEqual(run(1), run(1));
    assert.notDeepEqual(run(1), run(2));
    const greedy = createPipeline({ settings: { ...settings, temperature: 0 }, rng: new Rng(1) });
    assert.equal(greedy.next(row(0, 0.5, 1, 0.2)), 2);
  });

  it('a pipeline applies the constraint and the repetition penalty before choosing', () => {
    const pipeline = createPipeline({
      settings: { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 10 },
      rng: new Rng(0),
      allowed: { start: 1, end: 4 },
      context: [3],
    });
    assert.equal(pipeline.next(row(100, 1, 2, 3, 50)), 2);
    assert.equal(pipeline.next(row(100, 1, 2, 3, 50)), 1, 'the chosen token is penalised next time');
  });
});

describe('resolveSettings', () => {
  const defaults = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, maxNewTokens: 16 };
  it('merges overrides over defaults, ignoring undefined', () => {
    assert.deepEqual(resolveSettings('sampling', defaults, { temperature: 0.7, topK: undefined }), { ...defaults, temperature: 0.7 });
  });
  it('names the bad field', () => {
    assert.throws(() => resolveSettings('sampling', defaults, { topP: 0 }), /sampling\.topP must be in \(0, 1\], not 0/);
    assert.throws(() => resolveSettings('sampling', defaults, { maxNewTokens: 0 }), InvalidRequestError);
    assert.throws(() => resolveSettings('sampling', defaults, { temperature: -1 }), /sampling\.temperature/);
    assert.throws(() => resolveSettings('sampling', defaults, { topK: 1.5 }), /sampling\.topK must be an integer/);
  });
});
