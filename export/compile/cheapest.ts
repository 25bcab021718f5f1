import { relativeCost } from '../../plan/cost.js';
import type { Plan } from '../../plan/plan.js';

/**
 * The cheapest plan by the cost model among candidates built one at a time
 * (a CIFAR-10 plan's plaintexts run to hundreds of MiB, so only the best so
 * far is held); the first wins a tie, so the enumeration order is the
 * preference order.
 */
export function cheapest(candidates: Iterable<() => Plan>): Plan {
  let best: Plan | undefined,
    bestCost = Infinity;
  for (const build of candidates) {
    const p = build();
    const c = relativeCost(p);
    if (!best || c < bestCost) {
      best = p;
      bestCost = c;
    }
  }
  if (!best) throw new Error('compile: no candidate plan');
  return best;
}
