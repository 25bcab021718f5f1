import { tallySteps } from './counting.js';
import type { Plan } from './plan.js';

/** How many times one inference rotates by each step (counted by running the plan's kernels with one key per step). */
export function rotationUsage(plan: Plan): Map<number, number> {
  const u = new Map<number, number>();
  for (const t of tallySteps(plan, null)) for (const [k, n] of t.usage) u.set(k, (u.get(k) ?? 0) + n);
  return u;
}

/** Every distinct rotation step the plan performs (the Galois keys it needs unless plan.rotationKeys says otherwise). */
export const rotationSteps = (plan: Plan): number[] => [...rotationUsage(plan).keys()].sort((a, b) => a - b);

/** The Galois key steps to generate for this plan, and no others. */
export function galoisSteps(plan: Plan): number[] {
  return plan.rotationKeys ?? rotationSteps(plan);
}
