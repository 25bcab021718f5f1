import type * as tf from '@tensorflow/tfjs';
import { UserError } from '../common/errors.js';
import type { Plan } from '../plan/plan.js';
import { GroupedConv2D } from '../train/layers/grouped-conv.js';
import { factorizableConv } from '../train/factorize.js';
import { fullRank } from './lowrank.js';
import type { PruneConfig } from './options.js';
import { convSubBlocks, denseSubBlocks, residualShortcuts, stepOfLayer, type LayerBlocks } from './subblocks.js';
import { tileGrids, type TileGrid } from './tiles.js';

/** Tile and neuron pruning work on the tile grids of a tile-packed plan. */
export const isTiled = (p: PruneConfig) => p.method === 'tile' || p.method === 'neuron';

/** The layers a pruning prunes, with what it prunes in them: tile grids (tile, neuron), the plan's sub-blocks (subblock), the full rank each factorisation starts from (lowrank). */
export interface PruneTargets {
  names: string[];
  grids: TileGrid[];
  blocks: LayerBlocks[];
  ranks?: Map<string, number>;
}

/**
 * prune.layers, or by default every convolution (every dense layer for tile
 * and neuron pruning, and in a network without convolutions), checked
 * against the model; `where` names the config in errors.
 */
export function chooseLayers(model: tf.LayersModel, dense: Plan, p: PruneConfig, where: string): PruneTargets {
  const tiled = isTiled(p);
  const grids = tiled ? tileGrids(model, dense) : [];
  const weightLayers = model.layers.filter((l) => l instanceof GroupedConv2D || l.getClassName() === 'Dense');
  // Residual shortcut projections are no plan step of their own (they join the next step's residual input): sub-blocks leave them whole.
  const shortcuts = p.method === 'subblock' ? residualShortcuts(dense) : new Set<string>();
  const convs = weightLayers.filter((l) => l instanceof GroupedConv2D && !shortcuts.has(l.name)).map((l) => l.name);
  const denseNames = weightLayers.filter((l) => !(l instanceof GroupedConv2D)).map((l) => l.name);
  const prunable = tiled ? grids.map((g) => g.layer) : weightLayers.map((l) => l.name).filter((n) => !shortcuts.has(n));
  if (p.method === 'lowrank') return lowRankTargets(model, dense, p, where);
  const names = p.layers ?? (tiled ? prunable : convs.length ? convs : denseNames);
  for (const n of names) {
    if (shortcuts.has(n))
      throw new UserError(
        `${where}: prune.layers: "${n}" is a residual shortcut projection; sub-block pruning keeps it whole (it is part of the next layer's plan step)`,
      );
    if (!prunable.includes(n))
      throw new UserError(
        `${where}: prune.layers: "${n}" is not a ${tiled ? 'dense' : 'convolution or dense'} layer of ${model.name} (they are: ${prunable.join(', ')})`,
      );
  }
  if (tiled && names.length !== grids.length)
    throw new UserError(
      `${where}: prune.layers: ${p.method} pruning covers every dense layer (permutations tie neighbours together); leave prune.layers out`,
    );
  // Sub-blocks are read off the plan step of each layer (only sub-block pruning needs one step per layer).
  const stepOf = p.method === 'subblock' ? stepOfLayer(dense, names) : undefined;
  const blocks = stepOf
    ? names.map((n) => {
        const l = model.getLayer(n);
        return l instanceof GroupedConv2D ? convSubBlocks(l, dense, stepOf.get(n)!) : denseSubBlocks(l, dense, stepOf.get(n)!);
      })
    : [];
  return { names, grids, blocks };
}

/** lowrank: prune.layers, or every ungrouped d×d convolution (d > 1) outside residual shortcuts, each with its full rank. */
function lowRankTargets(model: tf.LayersModel, dense: Plan, p: PruneConfig, where: string): PruneTargets {
  const shortcuts = residualShortcuts(dense);
  const names =
    p.layers ??
    model.layers
      .filter((l) => l instanceof GroupedConv2D && !l.factorOf && l.groups === 1 && l.kernelSize > 1 && !shortcuts.has(l.name))
      .map((l) => l.name);
  if (names.length === 0)
    throw new UserError(`${where}: prune: ${model.name} has no convolution lowrank can factorise (ungrouped, d×d with d > 1)`);
  for (const n of names) factorizableConv(model, n, `${where}: prune.layers`);
  return { names, grids: [], blocks: [], ranks: new Map(names.map((n) => [n, fullRank(model, n)])) };
}
