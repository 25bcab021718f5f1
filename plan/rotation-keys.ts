import type { HeParams } from './params.js';

/**
 * Which Galois keys a plan uses and how each rotation is realised with them.
 * By default every distinct rotation step gets its own key (one key switch
 * per rotation). When those keys would not fit the memory budget (a dense
 * LeNet-5 at N=16384 needs ~160 steps × 14.7 MB), the keys are ±2^i (a
 * rotation by k is the chain of its non-adjacent-form digits, ~log2(S)/3 key
 * switches) plus, as the budget allows, the most used steps directly.
 */

/** Bytes of one Galois key: (primes − 1) decomposition parts × 2 polynomials × N × primes × 8. */
export function galoisKeyBytes(p: HeParams): number {
  const q = p.coeffModulusBits.length;
  return (q - 1) * 2 * p.polyModulusDegree * q * 8;
}

export function powersOfTwo(slots: number): number[] {
  const out: number[] = [];
  for (let s = 1; s < slots; s *= 2) out.push(s);
  return out;
}

/** The key steps that realise a rotation by k (mod slots) with `keys` (undefined: k itself). */
export function decompose(k: number, slots: number, keys?: readonly number[]): number[] {
  const r = ((k % slots) + slots) % slots;
  if (r === 0) return [];
  if (!keys || keys.includes(r)) return [r];
  // Non-adjacent form: digits in {-1, 0, 1}, no two adjacent non-zero; -2^i is a rotation by S - 2^i.
  const out: number[] = [];
  let n = r;
  for (let bit = 1; n > 0; bit *= 2) {
    if (n & 1) {
      const d = 2 - (n & 3); // +1 if n ≡ 1 (mod 4), -1 if n ≡ 3
      n -= d;
      const step = (((d * bit) % slots) + slots) % slots;
      if (step !== 0) out.push(step);
    }
    n /= 2;
  }
  return out;
}

/** ±2^i for 2^i < slots: every rotation decomposes into these. */
export function nafBasis(slots: number): number[] {
  return [...new Set(powersOfTwo(slots).flatMap((p) => [p, slots - p]))].sort((a, b) => a - b);
}

/**
 * Key set for a budget of `maxKeys` keys: the ±2^i basis plus the most used
 * steps (by how often one inference rotates by them), or undefined when every
 * step fits (one key per step).
 */
export function chooseKeys(usage: Map<number, number>, slots: number, maxKeys: number): number[] | undefined {
  const basis = nafBasis(slots);
  // Direct keys when they fit, or when they are no more than the basis anyway.
  if (usage.size <= Math.max(maxKeys, basis.length)) return undefined;
  const extra = [...usage.entries()]
    .filter(([k]) => !basis.includes(k))
    .sort((a, b) => b[1] - a[1] || a[0] - b[0])
    .slice(0, Math.max(0, maxKeys - basis.length))
    .map(([k]) => k);
  return [...basis, ...extra].sort((a, b) => a - b);
}
