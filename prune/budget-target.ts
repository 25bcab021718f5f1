import { planCounts, relativeCost } from '../plan/cost.js';
import type { Plan } from '../plan/plan.js';
import type { Masks } from './masks.js';
import { maskSparsity } from './masks.js';
import type { PruneConfig } from './options.js';

/**
 * An HE-cost budget instead of a sparsity (SpENCNN prunes "until the HE cost
 * fits"): the least sparsity, between `from` and `max`, whose masks bring
 * the plan's cost (its rotation count, or its estimated latency) to at most
 * `goal`, by bisection. `select(s)` gives the masks at sparsity s (greedy
 * from the same prior masks, so a higher s keeps a subset of the weights
 * and the cost never rises with s); `costOf` compiles the masked model and
 * measures it. When even `max` misses the goal, its masks are returned with
 * `reached: false`.
 */
export function sparsityForBudget(
  select: (sparsity: number) => Masks,
  costOf: (masks: Masks) => number,
  goal: number,
  o: { from?: number; max?: number; iterations?: number } = {},
): { masks: Masks; sparsity: number; cost: number; reached: boolean } {
  let lo = o.from ?? 0,
    hi = o.max ?? 0.98;
  let best = select(hi),
    bestCost = costOf(best);
  if (bestCost > goal) return { masks: best, sparsity: maskSparsity(best), cost: bestCost, reached: false };
  for (let i = 0; i < (o.iterations ?? 8); i++) {
    const mid = (lo + hi) / 2;
    const m = select(mid),
      c = costOf(m);
    if (c <= goal) {
      hi = mid;
      best = m;
      bestCost = c;
    } else lo = mid;
  }
  return { masks: best, sparsity: maskSparsity(best), cost: bestCost, reached: true };
}

/** The plan figure an HE-cost target bounds, and each round's goal for it. */
export interface CostBudget {
  key: 'rotationGoal' | 'latencyGoal';
  what: string;
  of: (plan: Plan) => number;
  goal: (round: number) => number;
}

/**
 * `prune.rotations` or `prune.latency` as a budget: each round's goal ramps
 * from the dense plan's figure to the target (as a sparsity ramps from 0).
 * Undefined for a sparsity target.
 */
export function costBudget(p: PruneConfig, dense: Plan): CostBudget | undefined {
  if (p.rotations !== undefined) {
    const from = planCounts(dense).total.rotate,
      to = p.rotations;
    return {
      key: 'rotationGoal',
      what: 'rotations',
      of: (pl) => planCounts(pl).total.rotate,
      goal: (r) => Math.round(from + ((to - from) * r) / p.steps),
    };
  }
  if (p.latency !== undefined) {
    const from = relativeCost(dense),
      to = p.latency;
    return {
      key: 'latencyGoal',
      what: 'estimated latency (cost-model units)',
      of: relativeCost,
      goal: (r) => from * (1 - ((1 - to) * r) / p.steps),
    };
  }
  return undefined;
}
