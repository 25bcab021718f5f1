import type { LinearStep, Plan, PlanStep } from './plan.js';

/**
 * Which steps of a plan hold which weight layers of the model it was
 * compiled from, read off the compiler's stamps (LinearStep.layers): pruning
 * finds a layer's sub-blocks or tiles in its step without matching layers
 * to steps by position or by name.
 */

/**
 * The steps computing the network's linear maps, in order (entry i is linear
 * map i); data-moving steps carry no stamp. A plan with linear steps and no
 * stamps (compiled before plans carried them) is refused.
 */
export function mapSteps(plan: Plan): LinearStep[] {
  const maps = plan.steps.filter((s): s is LinearStep => s.kind === 'linear' && s.layers !== undefined);
  if (maps.length === 0 && plan.steps.some((s) => s.kind === 'linear'))
    throw new Error('the plan records no source layers for its steps: recompile it from the model');
  return maps;
}

export interface LayerPlace {
  /** The step's name and index in plan.steps. */
  step: string;
  index: number;
  /** The other weight layers composed into the same step (no activation between them). */
  with: string[];
  /** The layer is the step's residual input (a shortcut projection), not its main map. */
  shortcut: boolean;
}

/**
 * Where each weight layer is in the plan. A layer that follows a residual
 * addition with no activation between composes into both the main map and
 * the residual part; it is the step's main layer, not a shortcut.
 */
export function layerPlaces(plan: Plan): Map<string, LayerPlace> {
  const out = new Map<string, LayerPlace>();
  const maps = new Set<PlanStep>(mapSteps(plan));
  plan.steps.forEach((st, index) => {
    if (st.kind !== 'linear' || !maps.has(st)) return;
    const main = new Set(st.layers);
    const shortcut = (st.skip?.layers ?? []).filter((l) => !main.has(l));
    for (const layer of shortcut) out.set(layer, { step: st.name, index, with: shortcut.filter((l) => l !== layer), shortcut: true });
    for (const layer of main) out.set(layer, { step: st.name, index, with: [...main].filter((l) => l !== layer), shortcut: false });
  });
  return out;
}
