import { tallySteps } from './counting.js';
import { zeroCounts, type OpCounts } from './op-counts.js';
import { sentCiphertexts, stepLevels, type Plan } from './plan.js';
import { kindOf } from './steps/table.js';
import { rescaleCost, rotationCost } from './diagonals.js';

/**
 * Op counts of one inference from the plan alone, with no arithmetic: each
 * step's kernel run on the counting backend (plan/counting), so what pruning
 * optimises is what the interpreter executes.
 */
export function planCounts(plan: Plan): { total: OpCounts; perStep: { name: string; counts: OpCounts }[]; plaintexts: number } {
  const tallies = tallySteps(plan);
  const perStep = plan.steps.map((s, i) => ({ name: s.name, counts: tallies[i].counts }));
  const total = zeroCounts();
  for (const { counts } of perStep) for (const k of Object.keys(total) as (keyof OpCounts)[]) total[k] += counts[k];
  return { total, perStep, plaintexts: tallies.reduce((a, t) => a + t.operands, 0) };
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
export function planMemory(plan: Plan): {
  plaintexts: number;
  plaintextBytes: number;
  peakCiphertexts: number;
  peakCiphertextBytes: number;
} {
  const levels = stepLevels(plan);
  const tallies = tallySteps(plan);
  const N = plan.params.polyModulusDegree;
  let plaintexts = 0,
    plaintextBytes = 0,
    peakCiphertexts = sentCiphertexts(plan),
    peakCiphertextBytes = 0;
  let inCts = sentCiphertexts(plan);
  const kept = new Map<number, number>();
  plan.steps.forEach((st, i) => {
    const level = levels[i];
    plaintexts += tallies[i].operands;
    plaintextBytes += tallies[i].operands * N * (level + 1) * 8;
    for (const r of kindOf(st).reads(st)) kept.set(r.step, r.cts);
    const held = inCts + st.out.cts + [...kept.values()].reduce((a, b) => a + b, 0);
    if (held > peakCiphertexts) peakCiphertexts = held;
    peakCiphertextBytes = Math.max(peakCiphertextBytes, held * 2 * N * (level + 1) * 8);
    inCts = st.out.cts;
  });
  return { plaintexts, plaintextBytes, peakCiphertexts, peakCiphertextBytes };
}

/**
 * Estimated server time in the units of plan/diagonals' rotationCost
 * ((level+2)² per key switch at N=16384): what compile-time choices
 * minimise. Elementwise operations scale with the primes left; node-seal at
 * N=16384, level 5 measured 32.5 ms per rotation, 2.26 ms per plaintext
 * multiplication, 0.29 ms per addition (bench/he-overhead measures these
 * per plan and level). Every operation costs twice as much per doubling of
 * N (as many coefficients again per prime), so plans at different N
 * compare: a packing one level deeper that needs N=32768 must save more
 * than half its operations to win.
 */
export function relativeCost(plan: Plan): number {
  return stepCosts(plan).reduce((a, c) => a + c, 0);
}

/** Each step's share of relativeCost, in the plan's step order (where the latency goes). */
export function stepCosts(plan: Plan): number[] {
  const levels = stepLevels(plan);
  const ring = plan.params.polyModulusDegree / 16384;
  return tallySteps(plan).map(({ counts: c }, i) => {
    const level = levels[i];
    return (
      ring *
      (c.rotate * rotationCost(level) +
        c.rescale * rescaleCost(level) +
        c.mul * 2 * rotationCost(level) +
        c.mulPlain * 0.57 * (level + 1) +
        (c.add + c.addPlain) * 0.073 * (level + 1))
    );
  });
}

/**
 * relativeCost in seconds of single-thread server time per image: 0.66 ms
 * per unit (32.5 ms per rotation at level 5 at N=16384, 49 units). A lower bound, for gating rather than reporting: real
 * CKKS times run above it, most where weights past the plaintext budget are
 * encoded at each use (bench/compare-latency measures the ratio per plan).
 */
export const SECONDS_PER_COST_UNIT = 0.66e-3;
export const estimatedServerSeconds = (plan: Plan) => relativeCost(plan) * SECONDS_PER_COST_UNIT;
