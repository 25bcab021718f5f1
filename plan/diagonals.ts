/**
 * Pure packing maths (no crypto): a linear map between slot vectors, given as
 * sparse (outSlot, inSlot, weight) entries, becomes generalised diagonals
 * d_k[j] = M[j][(j+k) mod S], so that y = Σ_k d_k ⊙ rot(x, k). Zero entries
 * (pruned weights) produce no diagonal: no plaintext, no multiplication, no
 * rotation. Baby-step/giant-step then writes k = g + b and computes
 * y = Σ_g rot(Σ_b rot(d_{g+b}, -g) ⊙ rot(x, b), g), so rotations ≈ |B| + |G|
 * instead of |K|.
 */
export class SparseSlotMatrix {
  private readonly entries = new Map<number, number>();
  constructor(readonly slots: number) {}
  add(outSlot: number, inSlot: number, w: number): void {
    if (w === 0) return;
    const key = outSlot * this.slots + inSlot;
    this.entries.set(key, (this.entries.get(key) ?? 0) + w);
  }
  get size(): number { return this.entries.size; }
  *[Symbol.iterator](): Generator<[number, number, number]> {
    for (const [key, w] of this.entries) if (w !== 0) yield [Math.floor(key / this.slots), key % this.slots, w];
  }
}

/** Diagonals keyed by rotation k in [0, S). */
export function toDiagonals(m: SparseSlotMatrix): Map<number, Float64Array> {
  const S = m.slots;
  const diags = new Map<number, Float64Array>();
  for (const [r, c, w] of m) {
    const k = (((c - r) % S) + S) % S;
    let d = diags.get(k);
    if (!d) { d = new Float64Array(S); diags.set(k, d); }
    d[r] += w;
  }
  for (const [k, d] of diags) if (d.every((v) => v === 0)) diags.delete(k);
  return diags;
}

/** One giant step: rotate the sum of its baby-step products by `giant`. */
export interface GiantStep { giant: number; terms: { baby: number; k: number }[] }

/**
 * Splits diagonal indices k (mod S) into giant + baby. `giantUnit` sets the
 * giant-step grid: giant = round(k / unit)·unit (signed, so small negative
 * offsets stay baby steps). For convolutions the unit is the channel block
 * (babies = kernel offsets, giants = channel shifts); for dense layers ≈ √|K|.
 */
export function bsgsSplit(ks: number[], S: number, giantUnit: number): GiantStep[] {
  const groups = new Map<number, { baby: number; k: number }[]>();
  for (const k of ks) {
    const signed = k > S / 2 ? k - S : k;
    const g = Math.round(signed / giantUnit) * giantUnit;
    const giant = ((g % S) + S) % S;
    const baby = (((signed - g) % S) + S) % S;
    if (!groups.has(giant)) groups.set(giant, []);
    groups.get(giant)!.push({ baby, k });
  }
  return [...groups.entries()].sort((a, b) => a[0] - b[0]).map(([giant, terms]) => ({ giant, terms: terms.sort((a, b) => a.baby - b.baby) }));
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
 * Picks the giant unit of least estimated cost among candidates: baby
 * rotations run at the input level, each giant step costs a rescale there
 * and a rotation one level lower (rescale first, rotate later).
 */
export function bestGiantUnit(ks: number[], S: number, candidates: number[], level = 1, inputs = 1): number {
  let best = candidates[0], bestCost = Infinity;
  for (const u of candidates) {
    const split = bsgsSplit(ks, S, u);
    const babies = new Set(split.flatMap((g) => g.terms.map((t) => t.baby)));
    const nb = [...babies].filter((b) => b !== 0).length * inputs;
    const ng = split.filter((g) => g.giant !== 0).length;
    const cost = nb * rotationCost(level) + ng * rotationCost(level - 1) + split.length * rescaleCost(level);
    if (cost < bestCost) { bestCost = cost; best = u; }
  }
  return best;
}

/** rot(v, r): slot i takes v[i + r] (left rotation), as the backends rotate ciphertexts. */
export function rotateVec(v: Float64Array, r: number): Float64Array {
  const S = v.length, k = ((r % S) + S) % S, out = new Float64Array(S);
  for (let i = 0; i < S; i++) out[i] = v[(i + k) % S];
  return out;
}
