import type { CkksBackend } from './backend.js';
import { zeroCounts, type OpCounts } from './op-counts.js';
import type { LinearStep, Plan } from './plan.js';

/**
 * Runs a plan on any CKKS backend. `prepare` encodes every plaintext operand
 * once (weights are reused for every input); `run` evaluates one encrypted
 * input. Levels: step i runs at level top - i and leaves at top - i - 1.
 */
export interface PreparedLinear<P> { step: LinearStep; outputs: { giants: { giant: number; terms: { input: number; baby: number; pt: P }[] }[]; bias?: P }[] }
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
    const outputs = step.outputs.map((o) => ({
      giants: o.giants.map((g) => ({ giant: g.giant, terms: g.terms.map((t) => ({ input: t.input, baby: t.baby, pt: b.encode(t.diag, level, q) })) })),
      bias: o.bias ? b.encode(o.bias, level, scale * q) : undefined,
    }));
    return { step, outputs };
  });
  return { plan, steps, encodeCounts: diff(b.counts, before) };
}

export function freePrepared<C, P>(b: CkksBackend<C, P>, p: Prepared<P>): void {
  for (const s of p.steps) {
    if (!('outputs' in s)) continue;
    for (const o of s.outputs) {
      for (const g of o.giants) for (const t of g.terms) b.free(t.pt);
      if (o.bias) b.free(o.bias);
    }
  }
}

function runLinear<C extends object, P>(b: CkksBackend<C, P>, s: PreparedLinear<P>, xs: C[]): C[] {
  const temps: C[] = [];
  const t = (c: C) => { temps.push(c); return c; };
  // Baby steps: each distinct rotation of each input once, shared by every output and giant step.
  const babies = xs.map((x) => new Map<number, C>([[0, x]]));
  const baby = (input: number, r: number) => {
    let c = babies[input].get(r);
    if (!c) { c = t(b.rotate(xs[input], r)); babies[input].set(r, c); }
    return c;
  };
  const outs = s.outputs.map((o) => {
    let total: C | undefined;
    o.giants.forEach((g, gi) => {
      let acc: C | undefined;
      for (const term of g.terms) {
        const prod = t(b.mulPlain(baby(term.input, term.baby), term.pt));
        acc = acc === undefined ? prod : t(b.add(acc, prod));
      }
      if (gi === 0 && o.bias) acc = t(b.addPlain(acc!, o.bias));
      // Rescale before the giant rotation: rotations are cheaper with fewer primes left.
      let part = t(b.rescale(acc!));
      if (g.giant !== 0) part = t(b.rotate(part, g.giant));
      total = total === undefined ? part : t(b.add(total, part));
    });
    let z = total!;
    for (const r of s.step.rotateSum) z = t(b.add(z, t(b.rotate(z, r))));
    return z;
  });
  const keep = new Set(outs);
  for (const c of temps) if (!keep.has(c)) b.free(c);
  return outs;
}

/** Evaluates one encrypted input (one or more ciphertexts, still owned by the caller). */
export function run<C extends object, P>(b: CkksBackend<C, P>, p: Prepared<P>, input: C[], onStep?: (r: StepReport) => void): C[] {
  let x = input;
  for (const s of p.steps) {
    const before = { ...b.counts };
    const t0 = performance.now();
    let y: C[];
    if ('outputs' in s) {
      y = runLinear(b, s, x);
    } else {
      y = x.map((c) => { const sq = b.mul(c, c); const r = b.rescale(sq); b.free(sq); return r; });
    }
    if (x !== input) for (const c of x) b.free(c);
    x = y;
    onStep?.({ name: s.step.name, kind: s.step.kind, ms: performance.now() - t0, counts: diff(b.counts, before), levelOut: b.levelOf(x[0]) });
  }
  return x;
}

/** Client side: packs one HWC input (already normalised) into the slots of its ciphertexts, with its copies. */
export function packInput(plan: Plan, values: ArrayLike<number>): Float64Array[] {
  const S = plan.slots;
  const v = Array.from({ length: plan.input.cts }, () => new Float64Array(S));
  for (const off of [0, ...plan.inputCopies]) {
    for (let i = 0; i < plan.input.slotOf.length; i++) {
      const g = plan.input.slotOf[i];
      v[Math.floor(g / S)][(g % S) + off] = values[i];
    }
  }
  return v;
}

/** Client side: reads the output tensor out of the decrypted ciphertexts' slots. */
export function unpackOutput(plan: Plan, slots: ArrayLike<number>[]): Float64Array {
  const S = plan.slots;
  return Float64Array.from(plan.output.slotOf, (g) => slots[Math.floor(g / S)][g % S]);
}
