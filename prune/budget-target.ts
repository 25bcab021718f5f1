import type { Masks } from './masks.js';
import { maskSparsity } from './masks.js';

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
  select: (sparsity: number) => Masks, costOf: (masks: Masks) => number, goal: number,
  o: { from?: number; max?: number; iterations?: number } = {},
): { masks: Masks; sparsity: number; cost: number; reached: boolean } {
  let lo = o.from ?? 0, hi = o.max ?? 0.98;
  let best = select(hi), bestCost = costOf(best);
  if (bestCost > goal) return { masks: best, sparsity: maskSparsity(best), cost: bestCost, reached: false };
  for (let i = 0; i < (o.iterations ?? 8); i++) {
    const mid = (lo + hi) / 2;
    const m = select(mid), c = costOf(m);
    if (c <= goal) { hi = mid; best = m; bestCost = c; } else lo = mid;
  }
  return { masks: best, sparsity: maskSparsity(best), cost: bestCost, reached: true };
}
