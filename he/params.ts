import { UserError } from '../common/errors.js';
import { levelsOf, slotsOf, type HeParams } from '../plan/params.js';
import { missingPrimes } from './prime-supply.js';

export { levelsOf, slotsOf, type HeParams } from '../plan/params.js';

/** Largest total coefficient-modulus bits at 128-bit security (HE standard; SEAL's CoeffModulus::MaxBitCount). */
export const MAX_BITS_128: Readonly<Record<number, number>> = { 1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881 };

export const totalBits = (p: HeParams) => p.coeffModulusBits.reduce((a, b) => a + b, 0);

export interface ParamRequest {
  /** Rescales the plan needs. */
  levels: number;
  /** Slots the largest packed vector needs. */
  slots: number;
  scaleBits?: number;
  /** Bits of the first prime above the scale: room for the result's integer part. */
  headroomBits?: number;
  /**
   * Bits of each rescale prime in the order the plan consumes them (top
   * level first), one per level; default every one scaleBits. A linear
   * step's prime sets only its weights' precision and may be smaller than
   * the scale (see plan/scale-chain); a square's must be the scale's size.
   */
  primeBits?: readonly number[];
}

function build(n: number, consumed: readonly number[], scaleBits: number, headroomBits: number): HeParams {
  const edge = Math.min(60, scaleBits + headroomBits);
  // coeffModulusBits[l] is the prime a rescale at level l divides by: the top level's comes last.
  return { polyModulusDegree: n, coeffModulusBits: [edge, ...[...consumed].reverse(), edge], scaleBits };
}

/** No 128-bit parameters hold the levels a packing needs: the compiler tries another packing, the HEMET search records the depth. */
export class DepthError extends UserError {
  constructor(
    message: string,
    readonly levels: number,
  ) {
    super(message);
    this.name = 'DepthError';
  }
}

/**
 * Smallest 128-bit-secure N (and its modulus chain) that holds `levels`
 * rescales and `slots` slots. Smaller N is much faster (DESIGN §2: a rotation
 * at N=32768 costs ~14x one at N=16384), so the search goes up from 8192.
 */
export function selectParams(r: ParamRequest): HeParams {
  const scaleBits = r.scaleBits ?? 40,
    headroom = r.headroomBits ?? 20;
  if (scaleBits < 20 || scaleBits > 59) throw new UserError(`scaleBits ${scaleBits}: expected 20..59`);
  const consumed = r.primeBits ?? Array<number>(r.levels).fill(scaleBits);
  if (consumed.length !== r.levels) throw new Error(`selectParams: ${consumed.length} prime sizes for ${r.levels} levels`);
  let short: { n: number; bits: number; asked: number; exist: number } | undefined;
  for (const n of [8192, 16384, 32768]) {
    if (n / 2 < r.slots) continue;
    const p = build(n, consumed, scaleBits, headroom);
    if (totalBits(p) > MAX_BITS_128[n]) continue;
    // Small primes are scarce at large N (p ≡ 1 mod 2N): a chain SEAL could not build is no choice.
    const missing = missingPrimes(p.coeffModulusBits, n);
    if (!missing) return p;
    short ??= { n, ...missing };
  }
  if (short)
    throw new UserError(
      `no 128-bit-secure CKKS parameters for ${r.levels} levels with rescale primes of [${[...new Set(consumed)].join(', ')}] bits: ` +
        `N=${short.n} would hold them, but only ${short.exist} primes of ${short.bits} bits (p ≡ 1 mod ${2 * short.n}) exist and ${short.asked} are needed; use larger primes`,
    );
  const maxLevels = Math.floor((MAX_BITS_128[32768] - 2 * Math.min(60, scaleBits + headroom)) / scaleBits);
  throw new DepthError(
    `no 128-bit-secure CKKS parameters hold ${r.levels} levels at ${scaleBits}-bit scale and ${r.slots} slots ` +
      `(N=32768 holds at most ${maxLevels} levels at this scale); lower the scale bits, or use masked refresh to split the depth`,
    r.levels,
  );
}

/**
 * Checks explicit parameters: 128-bit security, prime sizes, and that they
 * fit the plan. Whether each square's prime matches the scale depends on
 * the plan's steps: plan/scale-chain checks it where plan and parameters meet.
 */
export function checkParams(p: HeParams, need?: { levels: number; slots: number }, where = 'export.params'): void {
  const limit = MAX_BITS_128[p.polyModulusDegree];
  if (limit === undefined)
    throw new UserError(`${where}.polyModulusDegree ${p.polyModulusDegree}: expected one of ${Object.keys(MAX_BITS_128).join(', ')}`);
  const bad = p.coeffModulusBits.find((b) => !Number.isInteger(b) || b < 20 || b > 60);
  if (bad !== undefined) throw new UserError(`${where}.coeffModulusBits: prime size ${bad} outside 20..60 bits`);
  if (p.coeffModulusBits.length < 2) throw new UserError(`${where}.coeffModulusBits: need at least a first and a special prime`);
  const total = totalBits(p);
  if (total > limit) {
    throw new UserError(
      `${where}: ${total} coefficient-modulus bits at N=${p.polyModulusDegree} are not 128-bit secure (at most ${limit}); ` +
        `use fewer or smaller primes, or N=${p.polyModulusDegree * 2}`,
    );
  }
  const short = missingPrimes(p.coeffModulusBits, p.polyModulusDegree);
  if (short) {
    throw new UserError(
      `${where}.coeffModulusBits asks for ${short.asked} primes of ${short.bits} bits at N=${p.polyModulusDegree}, ` +
        `but only ${short.exist} such primes (p ≡ 1 mod ${2 * p.polyModulusDegree}) exist; use larger primes`,
    );
  }
  if (need) {
    const fit = (() => {
      try {
        return selectParams({ levels: need.levels, slots: need.slots, scaleBits: p.scaleBits });
      } catch {
        return undefined;
      }
    })();
    const suggest = fit ? ` (these would fit: N=${fit.polyModulusDegree}, coeffModulusBits [${fit.coeffModulusBits.join(', ')}])` : '';
    if (levelsOf(p) < need.levels) throw new UserError(`${where}: ${levelsOf(p)} levels, the plan needs ${need.levels}${suggest}`);
    if (slotsOf(p) < need.slots) throw new UserError(`${where}: ${slotsOf(p)} slots, the plan needs ${need.slots}${suggest}`);
  }
}
