/**
 * Pure packing maths (no crypto): a linear map between slot vectors, given as
 * sparse (outSlot, inSlot, weight) entries, becomes generalised diagonals
 * d_k[j] = M[j][(j+k) mod S], so that y = Σ_k d_k ⊙ rot(x, k). Zero entries
 * (pruned weights) produce no diagonal: no plaintext, no multiplication, no
 * rotation. Baby-step/giant-step then writes k = g + b and computes
 * y = Σ_g rot(Σ_b rot(d_{g+b}, -g) ⊙ rot(x, b), g), so rotations ≈ |B| + |G|
 * instead of |K|.
 */
export class SlotDiagonals {
  // Accumulated straight into diagonals: a wide conv has tens of millions of
  // (out, in) entries, too many to hold one by one, but only thousands of diagonals.
  private readonly diags = new Map<number, Float64Array>();
  constructor(readonly slots: number) {}
  add(outSlot: number, inSlot: number, w: number): void {
    if (w === 0) return;
    const S = this.slots,
      k = (((inSlot - outSlot) % S) + S) % S;
    let d = this.diags.get(k);
    if (!d) {
      d = new Float64Array(S);
      this.diags.set(k, d);
    }
    d[outSlot] += w;
  }
  /** Diagonals keyed by rotation k in [0, S); any that cancelled to all zeros are dropped. */
  diagonals(): Map<number, Float64Array> {
    for (const [k, d] of this.diags) if (d.every((v) => v === 0)) this.diags.delete(k);
    return this.diags;
  }
}

/** One giant step: rotate the sum of its baby-step products by `giant`. */
export interface GiantStep {
  giant: number;
  terms: { baby: number; k: number }[];
}

/**
 * How a diagonal index k (mod S) splits into giant + baby: the signed k is
 * rounded to the grid of `unit` (the coarse part) and the rest is the fine
 * part. Normally the giant is coarse (babies = kernel taps, giants = channel
 * shifts); with `coarseBabies` the roles swap, which wins when there are
 * fewer distinct coarse parts than fine ones, since babies are rotated once
 * per input ciphertext and giants once per output ciphertext (after the
 * rescale, one level lower).
 */
export interface SplitRule {
  unit: number;
  coarseBabies: boolean;
}

export function splitIndex(k: number, S: number, rule: SplitRule): { giant: number; baby: number } {
  const signed = k > S / 2 ? k - S : k;
  const coarse = Math.round(signed / rule.unit) * rule.unit;
  const mod = (v: number) => ((v % S) + S) % S;
  return rule.coarseBabies ? { giant: mod(signed - coarse), baby: mod(coarse) } : { giant: mod(coarse), baby: mod(signed - coarse) };
}

export function bsgsSplit(ks: number[], S: number, rule: SplitRule): GiantStep[] {
  const groups = new Map<number, { baby: number; k: number }[]>();
  for (const k of ks) {
    const { giant, baby } = splitIndex(k, S, rule);
    if (!groups.has(giant)) groups.set(giant, []);
    groups.get(giant)!.push({ baby, k });
  }
  return [...groups.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([giant, terms]) => ({ giant, terms: terms.sort((a, b) => a.baby - b.baby) }));
}

/**
 * Relative cost of a rotation with `level` rescales left: key switching
 * grows with the primes left, ~(level+2)² fits node-seal's measured ratios
 * (N=8192, 7 primes: 13.4 ms at level 5 down to 1.5 ms at level 0).
 */
export const rotationCost = (level: number) => (level + 2) ** 2;
/** A rescale costs about a fifth of a rotation at the same level. */
export const rescaleCost = (level: number) => 0.2 * rotationCost(level);

/**
 * Picks the split of least estimated cost for one linear step, given each
 * output ciphertext's diagonals (input ciphertext, index k). Babies are
 * rotated once per (input, baby) and shared by every output; each output
 * rescales once per giant and rotates by each non-zero giant one level lower.
 */
export function bestSplit(outputs: { input: number; k: number }[][], S: number, units: number[], level = 1): SplitRule {
  let best: SplitRule = { unit: units[0], coarseBabies: false },
    bestCost = Infinity;
  for (const unit of units) {
    for (const coarseBabies of [false, true]) {
      const rule = { unit, coarseBabies };
      const babies = new Set<string>();
      let giants = 0,
        rescales = 0;
      for (const diags of outputs) {
        const gs = new Set<number>();
        for (const d of diags) {
          const { giant, baby } = splitIndex(d.k, S, rule);
          if (baby !== 0) babies.add(`${d.input}:${baby}`);
          gs.add(giant);
        }
        rescales += gs.size;
        giants += gs.size - (gs.has(0) ? 1 : 0);
      }
      const cost = babies.size * rotationCost(level) + giants * rotationCost(level - 1) + rescales * rescaleCost(level);
      if (cost < bestCost) {
        bestCost = cost;
        best = rule;
      }
    }
  }
  return best;
}

/** rot(v, r): slot i takes v[i + r] (left rotation), as the backends rotate ciphertexts. */
export function rotateVec(v: Float64Array, r: number): Float64Array {
  const S = v.length,
    k = ((r % S) + S) % S,
    out = new Float64Array(S);
  for (let i = 0; i < S; i++) out[i] = v[(i + k) % S];
  return out;
}
