import { Rng } from '../common/rng.js';

/**
 * Runs `f` with Math.random replaced by a seeded generator. tfjs initialisers
 * without an explicit seed draw their seed from Math.random, so building a
 * model inside this makes its initial weights a function of `seed`.
 */
export function withSeededRandom<T>(seed: number, f: () => T): T {
  const original = Math.random;
  const rng = new Rng(seed);
  Math.random = () => rng.next();
  try {
    return f();
  } finally {
    Math.random = original;
  }
}
