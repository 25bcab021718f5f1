import type { PruneConfig } from './options.js';

/**
 * Round r of `prune.steps` aims at the share r/steps of each final target
 * (sparsity and weight sparsity rise linearly from 0; an HE-cost target
 * ramps from the dense plan's figure, see budget-target).
 */
export function roundTargets(p: PruneConfig, r: number) {
  return {
    sparsity: p.sparsity === undefined ? undefined : (p.sparsity * r) / p.steps,
    rotations: p.rotations === undefined ? undefined : { final: p.rotations, share: r / p.steps },
    latency: p.latency === undefined ? undefined : { final: p.latency, share: r / p.steps },
    weightSparsity: p.weightSparsity === undefined ? undefined : (p.weightSparsity * r) / p.steps,
  };
}
