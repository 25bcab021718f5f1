import { chooseKeys, galoisKeyBytes } from '../plan/rotation-keys.js';
import { rotationUsage, type Plan } from '../plan/plan.js';
import type { CompileOptions } from './compile.js';

/**
 * The last compile phase of every packing (diagonal and tiled): which baby
 * rotations the client performs (export.clientRotations: the first layer's
 * baby steps, which compile made every diagonal under `all`), then the Galois
 * keys within the key memory budget — after the former, so the server never
 * gets keys for rotations it does not perform.
 */
export function finishPlan(plan: Plan, o: CompileOptions): Plan {
  const first = plan.steps[0];
  if (o.clientRotations && first?.kind === 'linear') {
    const steps = new Set<number>();
    for (const out of first.outputs) for (const g of out.giants) for (const t of g.terms) if (t.input < plan.input.cts && t.baby !== 0) steps.add(t.baby);
    if (steps.size) plan.clientRotations = [...steps].sort((a, b) => a - b);
  }
  const maxKeys = Math.floor((o.maxGaloisKeyBytes ?? 512 * 2 ** 20) / galoisKeyBytes(plan.params));
  const keys = chooseKeys(rotationUsage(plan), plan.slots, maxKeys);
  if (keys) plan.rotationKeys = keys;
  return plan;
}
