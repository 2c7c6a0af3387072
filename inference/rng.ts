/**
 * A small seeded PRNG for sampling: xoshiro128** on uint32 math, seeded
 * through splitmix32 so that nearby seeds (0, 1, 2...) still give unrelated
 * streams. Not cryptographic; only reproducible.
 */

export interface Rng {
  /** The seed this generator started from (report it so a run can be replayed). */
  readonly seed: number;
  /** Next uniform uint32. */
  nextUint32(): number;
  /** Next uniform float in [0, 1), 53 bits of precision. */
  nextFloat(): number;
  /** The 4 words (uint32) of the current state: rngFromState(state) goes on from here. */
  state(): number[];
}

const TWO_POW_32 = 4294967296;

/** splitmix32 step: spreads a 32-bit state into a well-mixed output. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** A random seed in [0, 2^32) from the platform's CSPRNG. */
export function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

/**
 * Creates a generator. Any finite number is a valid seed: integers up to 2^53
 * keep all their bits (low and high words are both mixed in); fractions are
 * truncated. No seed draws a random one.
 */
export function createRng(seed?: number): Rng {
  const used = seed ?? randomSeed();
  if (!Number.isFinite(used)) throw new RangeError(`rng seed must be a finite number, got ${seed}`);
  const whole = Math.trunc(used);
  const lo = whole >>> 0;
  const hi = Math.floor(whole / TWO_POW_32) >>> 0;
  // Two independent splitmix streams, one per word of the seed: the first word
  // of each is a bijection of its input, so distinct seeds give distinct states.
  const a = { s: lo };
  const b = { s: hi ^ 0x5bd1e995 };
  const state = [splitmix32(a), splitmix32(b), splitmix32(a), splitmix32(b)];
  return rngFromState(state, used);
}

/**
 * xoshiro128** from a raw 4-word state: one saved with `state()` (a sampler continued on
 * another node), or the published reference states in tests. The all-zero state is the one
 * forbidden state.
 */
export function rngFromState(state: readonly number[], seed = 0): Rng {
  if (state.length !== 4) {
    throw new RangeError(`xoshiro128 state needs 4 words, got ${state.length}`);
  }
  let [s0, s1, s2, s3] = state.map((w) => w | 0);
  if ((s0 | s1 | s2 | s3) === 0) s0 = 1;

  const nextUint32 = (): number => {
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11);
    return result;
  };

  return {
    seed,
    nextUint32,
    state: () => [s0 >>> 0, s1 >>> 0, s2 >>> 0, s3 >>> 0],
    nextFloat(): number {
      // 21 high bits + 32 bits = 53 bits, the precision of a double.
      const high = nextUint32() >>> 11;
      const low = nextUint32();
      return (high * TWO_POW_32 + low) / 9007199254740992;
    },
  };
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
