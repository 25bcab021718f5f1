import { DepthError } from '../../he/params.js';
import { relativeCost } from '../../plan/cost.js';
import { planDepth, type Plan } from '../../plan/plan.js';

/**
 * The cheapest plan by the cost model among candidates built one at a time
 * (a CIFAR-10 plan's plaintexts run to hundreds of MiB, so only the best so
 * far is held); the first wins a tie, so the enumeration order is the
 * preference order. With `maxDepth`, deeper plans are not candidates.
 */
export function cheapest(candidates: Iterable<() => Plan>, maxDepth?: number): Plan {
  let best: Plan | undefined,
    bestCost = Infinity,
    shallowest = Infinity;
  for (const build of candidates) {
    const p = build();
    const depth = planDepth(p);
    shallowest = Math.min(shallowest, depth);
    if (maxDepth !== undefined && depth > maxDepth) continue;
    const c = relativeCost(p);
    if (!best || c < bestCost) {
      best = p;
      bestCost = c;
    }
  }
  if (!best && shallowest < Infinity)
    throw new DepthError(
      `export.maxDepth ${maxDepth}: every packing of this network needs more levels (the shallowest ${shallowest})`,
      shallowest,
    );
  if (!best) throw new Error('compile: no candidate plan');
  return best;
}
