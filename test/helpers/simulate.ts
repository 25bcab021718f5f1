import { SlotSimulator } from '../../plan/slot-sim.js';
import { prepare, run, packInput, unpackOutput } from '../../plan/interpreter.js';
import type { Plan } from '../../plan/plan.js';

/** Deterministic stand-in for the primes (the simulator needs no crypto): ~2^40 each. */
export function simFor(plan: Plan): SlotSimulator {
  const levels = plan.params.coeffModulusBits.length - 2;
  return new SlotSimulator({
    slots: plan.slots,
    rescalePrimes: Array.from({ length: levels }, (_, i) => 2 ** 40 - 1000 * (i + 1)),
    scale: 2 ** plan.params.scaleBits,
  });
}

/** Runs one input through the plan on the simulator; `sim.counts` holds that inference's ops only (not the encodes of prepare). */
export function simulate(plan: Plan, x: ArrayLike<number>): { y: Float64Array; sim: SlotSimulator } {
  const sim = simFor(plan);
  const p = prepare(sim, plan);
  const before = { ...sim.counts };
  const out = run(
    sim,
    p,
    packInput(plan, x).map((v) => sim.encrypt(sim.encode(v, sim.topLevel))),
    undefined,
    sim.refreshChannel(),
  );
  const y = unpackOutput(
    plan,
    out.map((c) => sim.decrypt(c)),
  );
  for (const k of Object.keys(before) as (keyof typeof before)[]) sim.counts[k] -= before[k];
  return { y, sim };
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
