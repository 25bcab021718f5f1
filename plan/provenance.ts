import type { LinearStep, Plan } from './plan.js';

/**
 * Which steps of a plan hold which weight layers of the model it was
 * compiled from, read off the compiler's stamps (LinearStep.layers): pruning
 * finds a layer's sub-blocks or tiles in its step without matching layers
 * to steps by position or by name.
 */

/** The steps computing the network's linear maps, in order (entry i is linear map i); data-moving steps carry no stamp. */
export const mapSteps = (plan: Plan): LinearStep[] =>
  plan.steps.filter((s): s is LinearStep => s.kind === 'linear' && s.layers !== undefined);

export interface LayerPlace {
  /** The step's name and index in plan.steps. */
  step: string;
  index: number;
  /** The other weight layers composed into the same step (no activation between them). */
  with: string[];
  /** The layer is the step's residual input (a shortcut projection), not its main map. */
  shortcut: boolean;
}

/** Where each weight layer is in the plan; a plan with linear steps and no stamps (compiled before plans carried them) is refused. */
export function layerPlaces(plan: Plan): Map<string, LayerPlace> {
  if (plan.steps.some((s) => s.kind === 'linear') && mapSteps(plan).length === 0)
    throw new Error('the plan records no source layers for its steps: recompile it from the model');
  const out = new Map<string, LayerPlace>();
  plan.steps.forEach((s, index) => {
    if (s.kind !== 'linear' || !s.layers) return;
    for (const layer of s.layers) out.set(layer, { step: s.name, index, with: s.layers.filter((l) => l !== layer), shortcut: false });
    const shortcut = s.skip?.layers ?? [];
    for (const layer of shortcut) out.set(layer, { step: s.name, index, with: shortcut.filter((l) => l !== layer), shortcut: true });
  });
  return out;
}
