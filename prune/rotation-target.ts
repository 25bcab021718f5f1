import type { Masks } from './masks.js';
import { maskSparsity } from './masks.js';

/**
 * A rotation budget instead of a sparsity (SpENCNN prunes "until the HE cost
 * fits"): the least sparsity, between `from` and `max`, whose masks bring
 * the plan to at most `goal` rotations, by bisection. `select(s)` gives the
 * masks at sparsity s (greedy from the same prior masks, so a higher s keeps
 * a subset of the weights and the count never rises with s); `rotationsOf`
 * compiles the masked model and counts. When even `max` misses the goal,
 * its masks are returned with `reached: false`.
 */
export function sparsityForRotations(
  select: (sparsity: number) => Masks, rotationsOf: (masks: Masks) => number, goal: number,
  o: { from?: number; max?: number; iterations?: number } = {},
): { masks: Masks; sparsity: number; rotations: number; reached: boolean } {
  let lo = o.from ?? 0, hi = o.max ?? 0.98;
  let best = select(hi), bestRot = rotationsOf(best);
  if (bestRot > goal) return { masks: best, sparsity: maskSparsity(best), rotations: bestRot, reached: false };
  for (let i = 0; i < (o.iterations ?? 8); i++) {
    const mid = (lo + hi) / 2;
    const m = select(mid), r = rotationsOf(m);
    if (r <= goal) { hi = mid; best = m; bestRot = r; } else lo = mid;
  }
  return { masks: best, sparsity: maskSparsity(best), rotations: bestRot, reached: true };
}
