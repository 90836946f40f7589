import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidRequestError } from '../../src/model/errors.ts';
import { MAX_SEED, resolveSeed, Rng } from '../../src/model/random.ts';

const draws = (rng: Rng, n: number) => Array.from({ length: n }, () => rng.nextUint32());

describe('Rng (xoshiro128**)', () => {
  it('repeats the same sequence for the same seed and stream', () => {
    assert.deepEqual(draws(new Rng(42), 100), draws(new Rng(42), 100));
    assert.deepEqual(draws(new Rng(MAX_SEED, 1), 10), draws(new Rng(MAX_SEED, 1), 10));
  });

  it('gives different sequences for different seeds, streams and high words', () => {
    const a = draws(new Rng(42), 8);
    assert.notDeepEqual(a, draws(new Rng(43), 8));
    assert.notDeepEqual(a, draws(new Rng(42, 1), 8));
    assert.notDeepEqual(draws(new Rng(5), 8), draws(new Rng(5 + 2 ** 32), 8));
  });

  it('draws floats in [0, 1) with a plausible mean', () => {
    const rng = new Rng(7);
    let sum = 0;
    for (let i = 0; i < 20000; i++) {
      const x = rng.nextFloat();
      assert.ok(x >= 0 && x < 1);
      sum += x;
    }
    assert.ok(Math.abs(sum / 20000 - 0.5) < 0.01);
  });

  it('rejects seeds that are not non-negative safe integers', () => {
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 53]) {
      assert.throws(() => new Rng(bad), InvalidRequestError);
      assert.throws(() => resolveSeed(bad), (e: unknown) => e instanceof InvalidRequestError && e.code === 'INVALID_REQUEST');
    }
  });

  it('resolves a missing seed to a random 32-bit one and keeps a given one', () => {
    const seed = resolveSeed(undefined);
    assert.ok(Number.isInteger(seed) && seed >= 0 && seed < 2 ** 32);
    assert.equal(resolveSeed(123), 123);
  });
});
