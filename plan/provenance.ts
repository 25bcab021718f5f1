import { consumesLevel, type LinearStep, type Plan, type PlanStep } from './plan.js';

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

/**
 * The block a weight layer belongs to, read off its name: the part before
 * the first `_` (fire2 of fire2_squeeze, mobile3 of mobile3_pw, conv2 of a
 * factorised conv2_1x1; conv1 is a block of its own).
 */
export const blockOfLayer = (layer: string) => layer.split('_')[0];

/** What one block of the model costs in levels, and the steps that spend them. */
export interface BlockDepth {
  block: string;
  levels: number;
  steps: string[];
}

/**
 * Levels per block of the model, in network order (HEMET's depth argument:
 * a mobile block spends more levels than the convolution it replaces). A
 * linear step counts for the block of the last layer it holds (the layer
 * whose output it computes); every other level-consuming step (a square)
 * counts for the block of the linear step before it. The levels sum to
 * planDepth.
 */
export function blockLevels(plan: Plan, blockOf: (layer: string) => string = blockOfLayer): BlockDepth[] {
  const stamped = new Set<PlanStep>(mapSteps(plan));
  const out = new Map<string, BlockDepth>();
  let current = 'input';
  for (const st of plan.steps) {
    if (stamped.has(st)) {
      const last = (st as LinearStep).layers!.at(-1);
      if (last !== undefined) current = blockOf(last);
    }
    if (!consumesLevel(st)) continue;
    const b = out.get(current) ?? { block: current, levels: 0, steps: [] };
    b.levels++;
    b.steps.push(st.name);
    out.set(current, b);
  }
  return [...out.values()];
}
