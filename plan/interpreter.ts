import type { CkksBackend } from './backend.js';
import type { OpCounts } from './op-counts.js';
import { clientRotated, sentCiphertexts, stepLevels, type ClientLayout, type Plan } from './plan.js';
import type { Operand, PreparedStep, RefreshChannel, RunEnv } from './steps/kind.js';
import { kindOf } from './steps/table.js';

export type { Operand, PreparedStep, RefreshChannel } from './steps/kind.js';

// Runs a plan on any CKKS backend, one step kind at a time (plan/steps).
// `prepare` encodes every plaintext operand once (weights are reused for
// every input); `run` evaluates one encrypted input.

/** `lazy`: how many operands did not fit the plaintext budget and are encoded at each use. */
export interface Prepared<P> {
  plan: Plan;
  steps: PreparedStep<P>[];
  encodeCounts: OpCounts;
  lazy: number;
}

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

export interface StepReport {
  name: string;
  kind: string;
  ms: number;
  counts: OpCounts;
  levelOut: number;
}

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
  let room = o.plaintextBudget ?? 2 ** 30,
    lazy = 0;
  let scale = b.scale;
  /** Scale of each step's output, for residual inputs read later. */
  const outScale: number[] = [];
  const steps = plan.steps.map((step, index): PreparedStep<P> => {
    const level = levels[index];
    const operand = (values: Float64Array, s: number): Operand<P> => {
      room -= plaintextBytes(plan, level);
      if (room >= 0) return { pt: b.encode(values, level, s) };
      lazy++;
      return { lazy: { values, level, scale: s } };
    };
    const r = kindOf(step).prepare({ b, plan, index, level, scale, outScale, operand }, step);
    scale = r.scale;
    outScale.push(scale);
    return { step, operands: r.operands };
  });
  return { plan, steps, encodeCounts: diff(b.counts, before), lazy };
}

export function freePrepared<C, P>(b: CkksBackend<C, P>, p: Prepared<P>): void {
  for (const s of p.steps) for (const op of s.operands) if ('pt' in op) b.free(op.pt);
}

/** Evaluates one encrypted input (the packed input and the client's rotated copies, still owned by the caller). */
export function run<C extends object, P>(
  b: CkksBackend<C, P>,
  p: Prepared<P>,
  sent: C[],
  onStep?: (r: StepReport) => void,
  channel?: RefreshChannel<C>,
): C[] {
  const { plan } = p;
  const cts = plan.input.cts;
  if (sent.length !== sentCiphertexts(plan))
    throw new Error(`the plan reads ${sentCiphertexts(plan)} input ciphertexts, ${sent.length} were given`);
  // The input proper, and the client's rotated copies of it (copy j of ciphertext c at (j + 1)·cts + c).
  const input = sent.slice(0, cts);
  const given = input.map((_, c) => new Map((plan.clientRotations ?? []).map((r, j) => [r, sent[(j + 1) * cts + c]])));
  // Outputs read later (residual inputs, refreshed tensors) are kept until their last reader.
  const lastReader = new Map<number, number>();
  plan.steps.forEach((st, i) => {
    for (const r of kindOf(st).reads(st)) lastReader.set(r.step, i);
  });
  const saved = new Map<number, C[]>([[-1, input]]);
  let x = input;
  for (const [index, s] of p.steps.entries()) {
    const before = { ...b.counts };
    const t0 = performance.now();
    const env: RunEnv<C, P> = { b, plan, index, keys: plan.rotationKeys, given: clientRotated(plan, index) ? given : [], saved, channel };
    const kind = kindOf(s.step);
    const y = kind.run(env, s, x);
    for (const r of kind.reads(s.step)) {
      if (r.step === -1 || lastReader.get(r.step) !== index) continue;
      const done = saved.get(r.step)!;
      saved.delete(r.step);
      if (done !== x) for (const c of done) b.free(c);
    }
    if (x !== input && ![...saved.values()].includes(x)) for (const c of x) b.free(c);
    if (lastReader.has(index)) saved.set(index, y);
    x = y;
    onStep?.({
      name: s.step.name,
      kind: s.step.kind,
      ms: performance.now() - t0,
      counts: diff(b.counts, before),
      levelOut: b.levelOf(x[0]),
    });
  }
  return x;
}

/**
 * Client side: packs one HWC input (already normalised) into the slots of its
 * ciphertexts, with its copies, then appends the rotated copies the plan
 * leaves to the client (rotation by r: slot j holds slot j + r, cyclically).
 */
export function packInput(plan: ClientLayout, values: ArrayLike<number>): Float64Array[] {
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
export function unpackOutput(plan: ClientLayout, slots: ArrayLike<number>[]): Float64Array {
  const S = plan.slots;
  return Float64Array.from(plan.output.slotOf, (g, i) => (g < 0 ? (plan.outputConstants?.[i] ?? NaN) : slots[Math.floor(g / S)][g % S]));
}
