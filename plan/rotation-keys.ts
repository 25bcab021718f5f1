import type { HeParams } from '../he/params.js';

/**
 * Which Galois keys a plan uses and how each rotation is realised with them.
 * By default every distinct rotation step gets its own key (one key switch
 * per rotation). When those keys would not fit the memory budget (a dense
 * LeNet-5 at N=16384 needs ~160 steps × 14.7 MB), keys are generated for the
 * powers of two only and a rotation by k is the chain of its binary digits:
 * more key switches, bounded key memory.
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
  const out: number[] = [];
  for (let bit = 1; bit < slots; bit *= 2) if (r & bit) out.push(bit);
  return out;
}
