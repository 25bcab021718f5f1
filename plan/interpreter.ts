import type { CkksBackend } from './backend.js';
import type { OpCounts } from './op-counts.js';
import { clientRotated, sentCiphertexts, stepLevels, type LinearStep, type Plan, type PoolStep, type RefreshStep, type SquareStep } from './plan.js';
import { decompose } from './rotation-keys.js';

// Runs a plan on any CKKS backend. `prepare` encodes every plaintext operand
// once (weights are reused for every input); `run` evaluates one encrypted
// input. Levels: step i runs at level top - i and leaves at top - i - 1.

/** A plaintext operand: encoded once at prepare time, or (lazy) encoded at use and freed at once. */
export type Operand<P> = { pt: P } | { lazy: { values: Float64Array; level: number; scale: number } };
export interface PreparedLinear<P> { step: LinearStep; outputs: { giants: { giant: number; terms: { input: number; baby: number; op: Operand<P> }[] }[]; bias?: Operand<P> }[] }
/** A square step with a linear term holds its constant, encoded at the input's scale so y·λ and y² share a scale. */
export interface PreparedSquare<P> { step: SquareStep; linear?: Operand<P> }
export type PreparedStep<P> = PreparedLinear<P> | PreparedSquare<P> | { step: Exclude<Plan['steps'][number], LinearStep | SquareStep> };

/** `lazy`: how many operands did not fit the plaintext budget and are encoded at each use. */
export interface Prepared<P> { plan: Plan; steps: PreparedStep<P>[]; encodeCounts: OpCounts; lazy: number }

export interface PrepareOptions {
  /**
   * Bytes of encoded plaintexts the server may keep; operands past it (in
   * plan order) are encoded each time they are used (slower, bounded memory:
   * the WASM heap is 4 GiB at most, shared with keys and ciphertexts).
   * Default 1 GiB.
   */
  plaintextBudget?: number;
}

/** Bytes of one encoded plaintext at `level` (N coefficients × (level + 1) primes × 8 bytes). */
export const plaintextBytes = (plan: Plan, level: number) => plan.params.polyModulusDegree * (level + 1) * 8;

export interface StepReport { name: string; kind: string; ms: number; counts: OpCounts; levelOut: number }

function diff(a: OpCounts, b: OpCounts): OpCounts {
  return Object.fromEntries(Object.keys(a).map((k) => [k, a[k as keyof OpCounts] - b[k as keyof OpCounts]])) as OpCounts;
}

/**
 * Scale bookkeeping identical to SEAL's: weights are encoded at the prime the
 * next rescale divides out, so a linear step leaves the scale unchanged; a
 * square gives s²/q. Biases are encoded at the exact pre-rescale scale.
 */
export function prepare<C, P>(b: CkksBackend<C, P>, plan: Plan, o: PrepareOptions = {}): Prepared<P> {
  const before = { ...b.counts };
  const levels = stepLevels(plan, b.topLevel);
  let room = o.plaintextBudget ?? 2 ** 30, lazy = 0;
  const operand = (values: Float64Array, level: number, scale: number): Operand<P> => {
    room -= plaintextBytes(plan, level);
    if (room >= 0) return { pt: b.encode(values, level, scale) };
    lazy++;
    return { lazy: { values, level, scale } };
  };
  let scale = b.scale;
  /** Scale of each step's output, for residual inputs read later. */
  const outScale: number[] = [];
  const steps: PreparedStep<P>[] = plan.steps.map((step, i) => {
    const level = levels[i];
    if (step.kind === 'pool') { outScale.push(scale); return { step }; }
    if (step.kind === 'refresh') {
      // Refreshed tensors come back freshly encrypted at the default scale.
      scale = b.scale;
      for (const t of step.tensors) outScale[t.step] = b.scale;
      if (i > 0) outScale[i - 1] = b.scale; // the current tensor, should it be read again later
      outScale.push(scale);
      return { step };
    }
    const q = b.rescalePrime(level);
    if (step.kind === 'square') {
      const linear = step.linear === undefined ? undefined : operand(new Float64Array(b.slots).fill(step.linear), level, scale);
      scale = (scale * scale) / q;
      outScale.push(scale);
      return linear ? { step, linear } : { step };
    }
    outScale.push(scale);
    // A residual input arrives at its own scale: its weights are encoded so its products match the main ones (scale·q).
    const mainCts = i === 0 ? plan.input.cts : plan.steps[i - 1].out.cts;
    const skipQ = step.skip ? (q * scale) / (step.skip.step === -1 ? b.scale : outScale[step.skip.step]) : q;
    const outputs = step.outputs.map((out) => ({
      giants: out.giants.map((g) => ({ giant: g.giant, terms: g.terms.map((t) => ({ input: t.input, baby: t.baby, op: operand(t.diag, level, t.input < mainCts ? q : skipQ) })) })),
      bias: out.bias ? operand(out.bias, level, scale * q) : undefined,
    }));
    return { step, outputs };
  });
  return { plan, steps, encodeCounts: diff(b.counts, before), lazy };
}

/** Runs `f` with the operand's plaintext, encoding (and freeing) it on the spot when lazy. */
function withOperand<C, P, T>(b: CkksBackend<C, P>, op: Operand<P>, f: (p: P) => T): T {
  if ('pt' in op) return f(op.pt);
  const p = b.encode(op.lazy.values, op.lazy.level, op.lazy.scale);
  try { return f(p); } finally { b.free(p); }
}

export function freePrepared<C, P>(b: CkksBackend<C, P>, p: Prepared<P>): void {
  for (const s of p.steps) {
    if ('linear' in s && s.linear && 'pt' in s.linear) b.free(s.linear.pt);
    if (!('outputs' in s)) continue;
    for (const o of s.outputs) {
      for (const g of o.giants) for (const t of g.terms) if ('pt' in t.op) b.free(t.op.pt);
      if (o.bias && 'pt' in o.bias) b.free(o.bias.pt);
    }
  }
}

/** Rotation by k with the plan's Galois keys: one key switch, or a chain of power-of-two ones. */
function rotate<C extends object, P>(b: CkksBackend<C, P>, x: C, k: number, keys?: readonly number[]): C {
  const seq = decompose(k, b.slots, keys);
  let cur = x;
  for (const r of seq) {
    const next = b.rotate(cur, r);
    if (cur !== x) b.free(cur);
    cur = next;
  }
  return cur;
}

/** `given[i]`: rotations of input i already at hand (the client's copies; the caller's, never freed here). */
function runLinear<C extends object, P>(b: CkksBackend<C, P>, s: PreparedLinear<P>, xs: C[], keys?: readonly number[], given: Map<number, C>[] = []): C[] {
  // Sums free their operands at once: a large layer has thousands of products per output.
  const sum = (acc: C | undefined, x: C): C => {
    if (acc === undefined) return x;
    const r = b.add(acc, x);
    b.free(acc); b.free(x);
    return r;
  };
  // Baby steps: each distinct rotation of each input once, shared by every output and giant step.
  const babies = xs.map((x) => new Map<number, C>([[0, x]]));
  const baby = (input: number, r: number) => {
    let c = given[input]?.get(r) ?? babies[input].get(r);
    if (!c) { c = rotate(b, xs[input], r, keys); babies[input].set(r, c); }
    return c;
  };
  const outs = s.outputs.map((o) => {
    let total: C | undefined;
    o.giants.forEach((g, gi) => {
      let acc: C | undefined;
      for (const term of g.terms) acc = sum(acc, withOperand(b, term.op, (p) => b.mulPlain(baby(term.input, term.baby), p)));
      if (gi === 0 && o.bias) {
        const a = acc!;
        acc = withOperand(b, o.bias, (p) => b.addPlain(a, p));
        b.free(a);
      }
      // Rescale before the giant rotation: rotations are cheaper with fewer primes left.
      let part = b.rescale(acc!);
      b.free(acc!);
      if (g.giant !== 0) { const r = rotate(b, part, g.giant, keys); b.free(part); part = r; }
      total = sum(total, part);
    });
    let z = total!;
    for (const r of s.step.rotateSum) z = sum(z, rotate(b, z, r, keys));
    return z;
  });
  for (const m of babies) for (const [r, c] of m) if (r !== 0) b.free(c);
  return outs;
}

/** Sum pooling: per ciphertext and stage, x ← Σ_r rot(x, r); the input stays the caller's. */
function runPool<C extends object, P>(b: CkksBackend<C, P>, st: PoolStep, xs: C[], keys?: readonly number[]): C[] {
  return xs.map((x) => {
    let cur = x;
    for (const stage of st.stages) {
      let acc: C | undefined;
      for (const r of stage) {
        const term = r === 0 ? cur : rotate(b, cur, r, keys);
        if (acc === undefined) { acc = term; continue; }
        const next = b.add(acc, term);
        if (acc !== cur) b.free(acc);
        if (term !== cur) b.free(term);
        acc = next;
      }
      if (cur !== x && acc !== cur) b.free(cur);
      cur = acc!;
    }
    // A pool with no stages would alias its input; copy-free semantics need a fresh ciphertext.
    if (cur === x) throw new Error(`${st.name}: a pool step needs at least one rotation`);
    return cur;
  });
}

/** Evaluates one encrypted input (one or more ciphertexts, still owned by the caller). */
/**
 * The client side of a masked refresh: decrypts a (masked) ciphertext and
 * returns a fresh top-level encryption of the same slots. Under CKKS this is
 * a network round trip to the key holder; on the simulator, a re-encryption.
 */
export interface RefreshChannel<C> { roundTrip(c: C): C }

/** Uniform masks in ±2^bits per slot (fresh per refresh and ciphertext; crypto-grade randomness). */
function mask(slots: number, bits: number): Float64Array {
  const u = new Uint32Array(slots);
  crypto.getRandomValues(u);
  return Float64Array.from(u, (v) => (v / 2 ** 32 * 2 - 1) * 2 ** bits);
}

/** Masks, round-trips and unmasks each ciphertext; the inputs stay the caller's. Counted as refresh per ciphertext. */
function refreshAll<C extends object, P>(b: CkksBackend<C, P>, cts: C[], bits: number, channel: RefreshChannel<C>): C[] {
  return cts.map((c) => {
    const r = mask(b.slots, bits);
    const rp = b.encode(r, b.levelOf(c), b.scaleOf(c));
    const masked = b.addPlain(c, rp);
    b.free(rp);
    const fresh = channel.roundTrip(masked);
    b.free(masked);
    const neg = b.encode(r.map((v) => -v), b.topLevel, b.scaleOf(fresh));
    const out = b.addPlain(fresh, neg);
    b.free(neg); b.free(fresh);
    b.counts.refresh++;
    return out;
  });
}

export function run<C extends object, P>(b: CkksBackend<C, P>, p: Prepared<P>, sent: C[], onStep?: (r: StepReport) => void, channel?: RefreshChannel<C>): C[] {
  const cts = p.plan.input.cts;
  if (sent.length !== sentCiphertexts(p.plan)) throw new Error(`the plan reads ${sentCiphertexts(p.plan)} input ciphertexts, ${sent.length} were given`);
  // The input proper, and the client's rotated copies of it (copy j of ciphertext c at (j + 1)·cts + c).
  const input = sent.slice(0, cts);
  const given = input.map((_, c) => new Map((p.plan.clientRotations ?? []).map((r, j) => [r, sent[(j + 1) * cts + c]])));
  // Outputs read later as residual inputs are kept until their last reader.
  const lastReader = new Map<number, number>();
  p.plan.steps.forEach((st, i) => { if (st.kind === 'linear' && st.skip) lastReader.set(st.skip.step, i); });
  const saved = new Map<number, C[]>([[-1, input]]);
  let x = input;
  for (const [i, s] of p.steps.entries()) {
    const before = { ...b.counts };
    const t0 = performance.now();
    let y: C[];
    if ('outputs' in s) {
      const skip = s.step.skip;
      const level = b.levelOf(x[0]);
      const extra = skip ? saved.get(skip.step)!.map((c) => b.modSwitchTo(c, level)) : [];
      y = runLinear(b, s, [...x, ...extra], p.plan.rotationKeys, clientRotated(p.plan, i) ? given : []);
      for (const c of extra) b.free(c);
      if (skip && skip.step !== -1 && lastReader.get(skip.step) === i) {
        const done = saved.get(skip.step)!;
        saved.delete(skip.step);
        if (done !== x) for (const c of done) b.free(c);
      }
    } else if (s.step.kind === 'pool') {
      y = runPool(b, s.step, x, p.plan.rotationKeys);
    } else if (s.step.kind === 'refresh') {
      if (!channel) throw new Error(`${s.step.name}: this plan needs masked refresh, and no client channel was given`);
      y = refreshAll(b, x, p.plan.refresh?.maskBits ?? 0, channel);
      // The current tensor, if read later, is read refreshed.
      for (const [k, v] of saved) if (k !== -1 && v === x) saved.set(k, y);
      for (const t of (s.step as RefreshStep).tensors) {
        const old = saved.get(t.step)!;
        saved.set(t.step, refreshAll(b, old, p.plan.refresh?.maskBits ?? 0, channel));
        for (const c of old) b.free(c);
      }
    } else {
      const linear = (s as PreparedSquare<P>).linear;
      y = x.map((c) => {
        let sq = b.mul(c, c);
        if (linear) {
          const l = withOperand(b, linear, (p) => b.mulPlain(c, p));
          const sum = b.add(sq, l);
          b.free(sq); b.free(l);
          sq = sum;
        }
        const r = b.rescale(sq);
        b.free(sq);
        return r;
      });
    }
    if (x !== input && ![...saved.values()].includes(x)) for (const c of x) b.free(c);
    if (lastReader.has(i)) saved.set(i, y);
    x = y;
    onStep?.({ name: s.step.name, kind: s.step.kind, ms: performance.now() - t0, counts: diff(b.counts, before), levelOut: b.levelOf(x[0]) });
  }
  return x;
}

/**
 * Client side: packs one HWC input (already normalised) into the slots of its
 * ciphertexts, with its copies, then appends the rotated copies the plan
 * leaves to the client (rotation by r: slot j holds slot j + r, cyclically).
 */
export function packInput(plan: Plan, values: ArrayLike<number>): Float64Array[] {
  const S = plan.slots;
  const v = Array.from({ length: plan.input.cts }, () => new Float64Array(S));
  for (const off of [0, ...plan.inputCopies]) {
    for (let i = 0; i < plan.input.slotOf.length; i++) {
      const g = plan.input.slotOf[i];
      if (g < 0) continue; // read by no kept weight: not sent
      v[Math.floor(g / S)][(g % S) + off] = values[i];
    }
  }
  const rotated = (plan.clientRotations ?? []).flatMap((r) => v.map((x) => Float64Array.from(x, (_, j) => x[(((j + r) % S) + S) % S])));
  return [...v, ...rotated];
}

/** Client side: reads the output tensor out of the decrypted ciphertexts' slots. */
export function unpackOutput(plan: Plan, slots: ArrayLike<number>[]): Float64Array {
  const S = plan.slots;
  return Float64Array.from(plan.output.slotOf, (g, i) => (g < 0 ? plan.outputConstants?.[i] ?? NaN : slots[Math.floor(g / S)][g % S]));
}
