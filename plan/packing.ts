import type { Layout } from './layout.js';
import type { Plan, PlanStep, TileShape } from './plan.js';

/**
 * The packing rules a plan's layouts follow, in one place: the compiler lays
 * weights out by them and the pruning methods read them to know which weights
 * share a plaintext (a sub-block, a tile), so both sides agree by
 * construction rather than by re-deriving each other.
 */

export const nextPow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));
/** 1, 2, 4, … up to n (a power of two) inclusive. */
export const pow2Upto = (n: number) => Array.from({ length: Math.log2(n) + 1 }, (_, i) => 2 ** i);
/** 1, 2, 4, … below n: the rotation steps of a rotate-and-sum over n slots. */
export const pow2Below = (n: number) => {
  const out: number[] = [];
  for (let s = 1; s < n; s *= 2) out.push(s);
  return out;
};

/**
 * Where weight (output o, input at global slot gi) of a hybrid dense step
 * lands in the first period: output slot, input ciphertext and slot (its
 * diagonal is in − out). Row o's weights go to output slots ≡ o (mod mm)
 * chosen so that every diagonal index is < mm.
 */
export function denseSlots(o: number, gi: number, S: number, p: number, mm: number): { out: number; inCt: number; in: number } {
  const inCt = Math.floor(gi / S),
    si = gi % S;
  const d = (((si - o) % p) + p) % p;
  const t = Math.floor(d / mm);
  const j = (o + t * mm) % p;
  return { out: j, inCt, in: (j + (d - t * mm)) % p };
}

/** The period a dense step's input repeats with, widened to hold its output (an input periodic with p is periodic with any multiple of p). */
export function densePeriod(inL: Layout, nOut: number, S: number): { p: number; mm: number } {
  const mm = nextPow2(nOut);
  return { p: inL.period ? Math.max(inL.period, mm) : S, mm };
}

/** Which way each tiled linear map's input lies: alternating, starting with `first` (li counts from the first tiled map). */
export function tileOrientation(first: TileShape['first'], li: number): 'outer' | 'inner' {
  return (li % 2 === 0) === (first === 'outer') ? 'outer' : 'inner';
}

/** The elements of each occupied row of t2 slots of a layout, by key ciphertext · t1 + row, in slot order. */
export function occupiedRows(cur: Layout, S: number, tile: { t1: number; t2: number }): Map<number, number[]> {
  const rows = new Map<number, number[]>();
  cur.slotOf.forEach((g, e) => {
    if (g < 0) return;
    const key = Math.floor(g / S) * tile.t1 + Math.floor((g % S) / tile.t2);
    const list = rows.get(key);
    if (list) list.push(e);
    else rows.set(key, [e]);
  });
  return new Map([...rows.entries()].sort((a, b) => a[0] - b[0]));
}

/**
 * Step names: linear map i of the lowered chain (0-based) compiles to the step
 * `linear{i+1}`; a `rows` step before it (export.tileFirstDense) is
 * `rows{i}`. Named here so the compiler and the readers of plans share them.
 */
export const linearStepName = (mapIndex: number) => `linear${mapIndex + 1}`;
export const rowsStepName = (mapIndex: number) => `rows${mapIndex}`;

/** The layout step `index` reads: the previous step's output (or the plan input). */
export const stepInput = (plan: Plan, index: number): Layout => (index === 0 ? plan.input : plan.steps[index - 1].out);

/** Index of the step named `name`, or −1. */
export const stepIndex = (plan: Plan, name: string) => plan.steps.findIndex((s: PlanStep) => s.name === name);
