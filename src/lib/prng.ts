/**
 * A small seeded pseudo-random generator (mulberry32). Deterministic code takes its randomness
 * from here with an explicit seed, so a simulator run replays exactly from its seed.
 */

/** One step of mulberry32: the next 32-bit state and an unsigned 32-bit output. */
export function prngNext(state: number): { state: number; value: number } {
  const next = (state + 0x6d2b79f5) | 0;
  let mixed = Math.imul(next ^ (next >>> 15), next | 1);
  mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
  return { state: next, value: (mixed ^ (mixed >>> 14)) >>> 0 };
}

/** Mixes an arbitrary number into a 32-bit starting state so nearby seeds diverge at once. */
export function prngSeedState(seed: number): number {
  return prngNext(Math.trunc(seed) | 0).value | 0;
}

/** A stateful wrapper for callers that own their generator (tests, the simulator). */
export class Prng {
  private state: number;

  constructor(seed: number) {
    this.state = prngSeedState(seed);
  }

  /** An unsigned 32-bit integer. */
  nextUint32(): number {
    const step = prngNext(this.state);
    this.state = step.state;
    return step.value;
  }

  /** An integer in [0, bound). */
  nextInt(bound: number): number {
    if (!(bound > 0)) throw new RangeError(`prng bound must be positive, got ${bound}`);
    return this.nextUint32() % bound;
  }

  /** A float in [0, 1). */
  nextFloat(): number {
    return this.nextUint32() / 0x1_0000_0000;
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.nextFloat() < p;
  }

  /** A uniformly chosen element; the array must not be empty. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('prng pick from an empty array');
    return items[this.nextInt(items.length)] as T;
  }
}
