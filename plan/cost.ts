import { zeroCounts, type OpCounts } from './op-counts.js';
import { clientRotated, sentCiphertexts, serverBaby, stepLevels, type Plan, type PlanStep } from './plan.js';
import { decompose } from './rotation-keys.js';
import { rescaleCost, rotationCost } from './diagonals.js';

/**
 * Static op counts of one inference, from the plan alone (no execution):
 * the cost model pruning optimises. Must equal what the interpreter does on
 * any backend (asserted in tests).
 */
export function stepCounts(st: PlanStep, slots: number, keys?: readonly number[], client?: ReturnType<typeof clientRotated>): OpCounts {
  const c = zeroCounts();
  /** Key switches of one rotation by k (1 with its own key, its binary digits with power-of-two keys). */
  const rot = (k: number) => decompose(k, slots, keys).length;
  if (st.kind === 'square') {
    c.mul = st.out.cts; c.rescale = st.out.cts;
    if (st.linear !== undefined) { c.mulPlain = st.out.cts; c.add = st.out.cts; }
    return c;
  }
  if (st.kind === 'refresh') {
    const cts = st.out.cts + st.tensors.reduce((a, t) => a + t.cts, 0);
    c.refresh = cts;
    c.addPlain = 2 * cts;
    return c;
  }
  if (st.kind === 'pool') {
    for (const stage of st.stages) {
      c.add += st.out.cts * (stage.length - 1);
      for (const r of stage) if (r !== 0) c.rotate += st.out.cts * rot(r);
    }
    return c;
  }
  const babies = new Set<string>();
  if (st.skip) c.modSwitch += st.skip.cts;
  for (const o of st.outputs) {
    for (const g of o.giants) {
      for (const t of g.terms) if (serverBaby(t.input, t.baby, client)) babies.add(`${t.input}:${t.baby}`);
      c.mulPlain += g.terms.length;
      c.add += g.terms.length - 1;
      c.rescale += 1;
      c.rotate += rot(g.giant);
    }
    c.add += o.giants.length - 1 + st.rotateSum.length;
    for (const r of st.rotateSum) c.rotate += rot(r);
    if (o.bias) c.addPlain += 1;
  }
  for (const b of babies) c.rotate += rot(Number(b.split(':')[1]));
  return c;
}

export function planCounts(plan: Plan): { total: OpCounts; perStep: { name: string; counts: OpCounts }[]; plaintexts: number } {
  const perStep = plan.steps.map((s, i) => ({ name: s.name, counts: stepCounts(s, plan.slots, plan.rotationKeys, clientRotated(plan, i)) }));
  const total = zeroCounts();
  for (const { counts } of perStep) for (const k of Object.keys(total) as (keyof OpCounts)[]) total[k] += counts[k];
  const plaintexts = plan.steps.reduce((a, s) => a + (s.kind === 'linear'
    ? s.outputs.reduce((x, o) => x + o.giants.reduce((y, g) => y + g.terms.length, 0) + (o.bias ? 1 : 0), 0) : 0), 0);
  return { total, perStep, plaintexts };
}

/** Ciphertexts one inference produces: the encrypted input's (with client-rotated copies) and every step's outputs (HE-PEx's ciphertext count). */
export const planCiphertexts = (plan: Plan) => plan.steps.reduce((a, s) => a + s.out.cts, sentCiphertexts(plan));

/**
 * The packed model's server memory, from the plan alone: every encoded
 * plaintext operand (N coefficients × its level's primes × 8 bytes, at the
 * level it is used), and the most ciphertext bytes held at once (a step's
 * inputs and outputs, plus tensors kept for residual reads; 2 polynomials
 * each). Key memory is reported apart (it depends on the rotation keys only).
 */
export function planMemory(plan: Plan): { plaintexts: number; plaintextBytes: number; peakCiphertexts: number; peakCiphertextBytes: number } {
  const levels = stepLevels(plan);
  const N = plan.params.polyModulusDegree;
  let plaintexts = 0, plaintextBytes = 0, peakCiphertexts = sentCiphertexts(plan), peakCiphertextBytes = 0;
  let inCts = sentCiphertexts(plan);
  const kept = new Map<number, number>();
  plan.steps.forEach((st, i) => {
    const level = levels[i];
    if (st.kind === 'linear') {
      for (const o of st.outputs) {
        const n = o.giants.reduce((a, g) => a + g.terms.length, 0) + (o.bias ? 1 : 0);
        plaintexts += n;
        plaintextBytes += n * N * (level + 1) * 8;
      }
      if (st.skip) kept.set(st.skip.step, st.skip.cts);
    }
    if (st.kind === 'square' && st.linear !== undefined) { plaintexts++; plaintextBytes += N * (level + 1) * 8; }
    const held = inCts + st.out.cts + [...kept.values()].reduce((a, b) => a + b, 0);
    if (held > peakCiphertexts) peakCiphertexts = held;
    peakCiphertextBytes = Math.max(peakCiphertextBytes, held * 2 * N * (level + 1) * 8);
    inCts = st.out.cts;
  });
  return { plaintexts, plaintextBytes, peakCiphertexts, peakCiphertextBytes };
}

/**
 * Estimated server time in the units of plan/diagonals' rotationCost
 * ((level+2)² per key switch): what compile-time choices minimise.
 * Elementwise operations scale with the primes left; node-seal at N=16384,
 * level 5 measured 32.5 ms per rotation, 2.26 ms per plaintext
 * multiplication, 0.29 ms per addition (bench/he-overhead measures these
 * per plan and level).
 */
export function relativeCost(plan: Plan): number {
  const levels = stepLevels(plan);
  return plan.steps.reduce((sum, st, i) => {
    const level = levels[i];
    const c = stepCounts(st, plan.slots, plan.rotationKeys, clientRotated(plan, i));
    return sum + c.rotate * rotationCost(level) + c.rescale * rescaleCost(level) + c.mul * 2 * rotationCost(level)
      + c.mulPlain * 0.57 * (level + 1) + (c.add + c.addPlain) * 0.073 * (level + 1);
  }, 0);
}

/**
 * relativeCost in seconds of single-thread server time per image: 0.66 ms
 * per unit at N=16384 (32.5 ms per rotation at level 5, 49 units), twice that
 * per doubling of N (DESIGN.md's top-level rotations: 5.5 ms / 16 units at
 * N=8192, 570 ms / 441 units at N=32768, i.e. 0.34 and 1.3 ms per unit). A
 * lower bound, for gating rather than reporting: measured server times were
 * 1.0–1.3x of it (VGG-5, 8 groups + sub-blocks), 2.0x (VGG-5, 2 groups),
 * 2.0–2.6x (VGG-5 dense, two sittings), 2.3x (LeNet-5 dense) and 1.6–2.5x
 * (HEFNet); the large gaps are weights past the plaintext budget, encoded at
 * each use.
 */
export const estimatedServerSeconds = (plan: Plan) => relativeCost(plan) * 0.66e-3 * (plan.params.polyModulusDegree / 16384);
