import { randomInt } from 'node:crypto';
import { InvalidRequestError } from './errors.ts';

/** The largest seed a request may give: seeds are integers in `[0, 2^53 - 1]`. */
export const MAX_SEED = Number.MAX_SAFE_INTEGER;

/**
 * A seeded pseudo-random generator owned by one request (never shared, never global), so that concurrent requests
 * cannot perturb each other's draws.
 *
 * Algorithm: xoshiro128** (Blackman & Vigna), 128 bits of state, period 2^128 - 1. The state is filled by SplitMix32
 * from the seed's low and high 32-bit words and a `stream` number, so that one seed gives independent streams for the
 * stages of a request (stream 0: the LLM, stream 1: the AR-DTok). Using a separate stream for the de-tokenizer is
 * what makes `renderImage({ tokens, seed })` reproduce the pixels that `generate` returned with the same seed.
 */
export class Rng {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;

  constructor(
    readonly seed: number,
    readonly stream = 0,
  ) {
    assertSeed(seed);
    let x = (seed >>> 0) ^ Math.imul(stream + 1, 0x9e3779b9);
    const hi = Math.floor(seed / 2 ** 32) >>> 0;
    const next = (): number => {
      // SplitMix32 (a 32-bit variant of SplitMix64's finaliser, as used to seed xoshiro128).
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
      z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
      return (z ^ (z >>> 15)) >>> 0;
    };
    this.#s0 = next() ^ hi;
    this.#s1 = next();
    this.#s2 = next() ^ Math.imul(hi, 0x85ebca6b);
    this.#s3 = next();
    if ((this.#s0 | this.#s1 | this.#s2 | this.#s3) === 0) this.#s3 = 1; // the all-zero state is a fixed point
  }

  /** The next 32 random bits as an unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.#s1, 5), 7), 9) >>> 0;
    const t = this.#s1 << 9;
    this.#s2 ^= this.#s0;
    this.#s3 ^= this.#s1;
    this.#s1 ^= this.#s2;
    this.#s0 ^= this.#s3;
    this.#s2 ^= t;
    this.#s3 = rotl(this.#s3, 11);
    return result;
  }

  /** A float in `[0, 1)` with 32 bits of randomness (enough for multinomial sampling over any vocabulary). */
  nextFloat(): number {
    return this.nextUint32() / 4294967296;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

function assertSeed(seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new InvalidRequestError(`seed must be an integer between 0 and ${MAX_SEED}, not ${seed}`);
  }
}

/**
 * The seed a request runs with: its own, checked, or a fresh random one in `[0, 2^32)` (short enough to type back
 * into the CLI), which the result reports so that the run can be repeated.
 */
export function resolveSeed(seed: number | undefined): number {
  if (seed === undefined) return randomInt(0, 2 ** 32);
  assertSeed(seed);
  return seed;
}

/** Stream numbers of the stages of one request. */
export const RNG_STREAM = { llm: 0, detok: 1, candidate: 16 } as const;
