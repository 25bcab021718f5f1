import type { CkksBackend } from './backend.js';
import { zeroCounts, type OpCounts } from './op-counts.js';
import type { LinearStep, Plan } from './plan.js';

/**
 * Runs a plan on any CKKS backend. `prepare` encodes every plaintext operand
 * once (weights are reused for every input); `run` evaluates one encrypted
 * input. Levels: step i runs at level top - i and leaves at top - i - 1.
 */
export interface PreparedLinear<P> { step: LinearStep; giants: { giant: number; terms: { baby: number; pt: P }[] }[]; bias?: P }
export type PreparedStep<P> = PreparedLinear<P> | { step: Plan['steps'][number] & { kind: 'square' } };

export interface Prepared<P> { plan: Plan; steps: PreparedStep<P>[]; encodeCounts: OpCounts }

export interface StepReport { name: string; kind: string; ms: number; counts: OpCounts; levelOut: number }

function diff(a: OpCounts, b: OpCounts): OpCounts {
  return Object.fromEntries(Object.keys(a).map((k) => [k, a[k as keyof OpCounts] - b[k as keyof OpCounts]])) as OpCounts;
}

/**
 * Scale bookkeeping identical to SEAL's: weights are encoded at the prime the
 * next rescale divides out, so a linear step leaves the scale unchanged; a
 * square gives s²/q. Biases are encoded at the exact pre-rescale scale.
 */
export function prepare<C, P>(b: CkksBackend<C, P>, plan: Plan): Prepared<P> {
  const before = { ...b.counts };
  let scale = b.scale;
  const steps: PreparedStep<P>[] = plan.steps.map((step, i) => {
    const level = b.topLevel - i;
    const q = b.rescalePrime(level);
    if (step.kind === 'square') { scale = (scale * scale) / q; return { step }; }
    const giants = step.giants.map((g) => ({ giant: g.giant, terms: g.terms.map((t) => ({ baby: t.baby, pt: b.encode(t.diag, level, q) })) }));
    const bias = step.bias ? b.encode(step.bias, level, scale * q) : undefined;
    return { step, giants, bias };
  });
  return { plan, steps, encodeCounts: diff(b.counts, before) };
}

export function freePrepared<C, P>(b: CkksBackend<C, P>, p: Prepared<P>): void {
  for (const s of p.steps) {
    if (!('giants' in s)) continue;
    for (const g of s.giants) for (const t of g.terms) b.free(t.pt);
    if (s.bias) b.free(s.bias);
  }
}

function runLinear<C extends object, P>(b: CkksBackend<C, P>, s: PreparedLinear<P>, x: C): C {
  const temps: C[] = [];
  const t = (c: C) => { temps.push(c); return c; };
  // Baby steps: each distinct input rotation once, shared by every giant step.
  const babies = new Map<number, C>([[0, x]]);
  for (const g of s.giants) for (const term of g.terms) if (!babies.has(term.baby)) babies.set(term.baby, t(b.rotate(x, term.baby)));
  let total: C | undefined;
  s.giants.forEach((g, gi) => {
    let acc: C | undefined;
    for (const term of g.terms) {
      const prod = t(b.mulPlain(babies.get(term.baby)!, term.pt));
      acc = acc === undefined ? prod : t(b.add(acc, prod));
    }
    if (gi === 0 && s.bias) acc = t(b.addPlain(acc!, s.bias));
    // Rescale before the giant rotation: rotations are cheaper with fewer primes left.
    let part = t(b.rescale(acc!));
    if (g.giant !== 0) part = t(b.rotate(part, g.giant));
    total = total === undefined ? part : t(b.add(total, part));
  });
  let z = total!;
  for (const r of s.step.rotateSum) z = t(b.add(z, t(b.rotate(z, r))));
  for (const c of temps) if (c !== z) b.free(c);
  return z;
}

/** Evaluates one encrypted input; the input ciphertext stays owned by the caller. */
export function run<C extends object, P>(b: CkksBackend<C, P>, p: Prepared<P>, input: C, onStep?: (r: StepReport) => void): C {
  let x = input;
  for (const s of p.steps) {
    const before = { ...b.counts };
    const t0 = performance.now();
    let y: C;
    if ('giants' in s) {
      y = runLinear(b, s, x);
    } else {
      const sq = b.mul(x, x);
      y = b.rescale(sq);
      b.free(sq);
    }
    if (x !== input) b.free(x);
    x = y;
    onStep?.({ name: s.step.name, kind: s.step.kind, ms: performance.now() - t0, counts: diff(b.counts, before), levelOut: b.levelOf(x) });
  }
  return x;
}

/** Client side: packs one HWC input (already normalised) into slots, with its copies. */
export function packInput(plan: Plan, values: ArrayLike<number>): Float64Array {
  const v = new Float64Array(plan.slots);
  for (const off of [0, ...plan.inputCopies]) {
    for (let i = 0; i < plan.input.slotOf.length; i++) v[(plan.input.slotOf[i] + off) % plan.slots] = values[i];
  }
  return v;
}

/** Client side: reads the output tensor out of the decrypted slots. */
export function unpackOutput(plan: Plan, slots: ArrayLike<number>): Float64Array {
  return Float64Array.from(plan.output.slotOf, (s) => slots[s]);
}
