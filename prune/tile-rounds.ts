import type * as tf from '@tensorflow/tfjs';
import { kernelValues, type Masks } from './masks.js';
import { clusterBoundaries, clusterPermutations, permuteMasks, permuteModel } from './permute.js';
import { scaledImportance, type InputScales } from './input-scales.js';
import { selectMagnitude } from './select.js';
import { selectTiles } from './tile-select.js';
import { nonEmptyTiles, tileMasks, type TileGrid } from './tiles.js';

/**
 * Bumped when tile or neuron pruning selects differently from the same settings (2: activation-aware importance,
 * boundary permutation): finished runs are redone. (allocation: cost is a new setting, not a change: no bump.)
 */
export const TILE_PRUNING_VERSION = 2;

/**
 * One HE-PEx pruning round on a tile-packed dense network (the model's
 * weights are permuted in place when `permute`). A weight's importance is
 * |w|, or |w|·‖x‖ with `scales` (activation-aware: see input-scales):
 *  - tile: drop the least important tiles (Σ importance) to `target` of each layer's tiles
 *    (with `globalScores`: the lowest-scored tiles of all layers, to `target` of all tiles);
 *  - tile + permute: prune each layer's weights by importance to `weightTarget` (default `target`), permute hidden
 *    neurons (and, with `permuteBoundary`, the client's inputs and the outputs: grid positions the plan's layouts carry)
 *    so the survivors cluster into few tiles, then drop the least
 *    important tiles (Σ importance of survivors) to `target`; the mask keeps the
 *    survivors of the kept tiles, or every weight in them when `expand`;
 *  - neuron (Hunter-style): zero the hidden neurons with the least
 *    ‖in-weights‖² + ‖out-weights‖², `target` of each hidden layer, and
 *    permute them together (compaction), so their tiles are empty.
 * Returns the masks and the grids (with any new boundary positions).
 */
export function tileRound(
  model: tf.LayersModel,
  grids: TileGrid[],
  o: {
    method: 'tile' | 'neuron';
    target: number;
    weightTarget?: number;
    permute: boolean;
    permuteBoundary?: boolean;
    expand: boolean;
    prior?: Masks;
    scales?: () => InputScales;
    /**
     * With it, tiles are ranked across layers by these scores of the current (permuted) model: the loss a tile's (or a
     * whole tile row's) removal adds; `costAware`: tiles and whole rows by that loss per HE cost saved (see selectTiles).
     */
    globalScores?: (grids: TileGrid[], within?: Masks) => { tiles: Map<string, Float64Array>; rows: Map<string, Float64Array> };
    costAware?: boolean;
  },
): { masks: Masks; grids: TileGrid[] } {
  const kernels = () => new Map(grids.map((g) => [g.layer, kernelValues(model, g.layer)]));
  const importance = () => {
    const k = kernels(),
      s = o.scales?.();
    return s ? new Map([...k].map(([l, w]) => [l, scaledImportance(w, s.get(l)!)])) : k;
  };
  let survivors: Masks | undefined;
  if (o.method === 'neuron') survivors = neuronMasks(grids, kernels(), o.target, o.prior);
  else if (o.permute) survivors = selectMagnitude(importance(), o.weightTarget ?? o.target, { perLayer: true });
  if (survivors && (o.permute || o.method === 'neuron')) {
    const surviving = () => {
      const k = kernels();
      return grids.map((g) => Float32Array.from(k.get(g.layer)!, (v, i) => v * survivors!.get(g.layer)![i]));
    };
    if (o.permuteBoundary) grids = clusterBoundaries(grids, surviving());
    const perms = clusterPermutations(grids, surviving());
    if (perms.some((p) => p.some((old, pos) => old !== pos))) {
      permuteModel(model, grids, perms);
      survivors = permuteMasks(survivors, grids, perms);
    }
    // The hidden order changed what each boundary element's support is: settle the boundary again.
    if (o.permuteBoundary) grids = clusterBoundaries(grids, surviving());
  }
  if (o.method === 'neuron') return { masks: survivors!, grids };
  // What goes with a tile: every weight in it when expanding, otherwise its survivors only (the rest go either way).
  const scored = o.globalScores?.(grids, o.expand ? undefined : survivors);
  const rank = scored && { scores: scored.tiles, global: true, ...(o.costAware ? { rows: scored.rows } : {}) };
  const kept = selectTiles(grids, importance(), o.target, survivors, rank);
  return { masks: tileMasks(grids, kept, o.expand ? undefined : survivors), grids };
}

/** Hunter-style: per hidden boundary, the weakest `fraction` of neurons lose every weight in and out (earlier rounds' dead stay dead). */
function neuronMasks(grids: TileGrid[], kernels: Map<string, Float32Array>, fraction: number, prior?: Masks): Masks {
  const masks: Masks = new Map(grids.map((g) => [g.layer, prior?.get(g.layer)?.slice() ?? new Float32Array(g.nIn * g.nOut).fill(1)]));
  for (let h = 0; h + 1 < grids.length; h++) {
    const a = grids[h],
      b = grids[h + 1];
    const wa = kernels.get(a.layer)!,
      wb = kernels.get(b.layer)!;
    const ma = masks.get(a.layer)!,
      mb = masks.get(b.layer)!;
    const score = Array.from({ length: a.nOut }, (_, k) => {
      let s = 0;
      for (let i = 0; i < a.nIn; i++) s += (wa[i * a.nOut + k] * ma[i * a.nOut + k]) ** 2;
      for (let q = 0; q < b.nOut; q++) s += (wb[k * b.nOut + q] * mb[k * b.nOut + q]) ** 2;
      return s;
    });
    const order = [...score.keys()].sort((x, y) => score[x] - score[y]).slice(0, Math.floor(fraction * a.nOut));
    for (const k of order) {
      for (let i = 0; i < a.nIn; i++) ma[i * a.nOut + k] = 0;
      for (let q = 0; q < b.nOut; q++) mb[k * b.nOut + q] = 0;
    }
  }
  return masks;
}

/** Non-empty tiles per layer of the current weights (what the plan stores). */
export function tilesKept(model: tf.LayersModel, grids: TileGrid[]): { layer: string; tiles: number }[] {
  return grids.map((g) => ({ layer: g.layer, tiles: nonEmptyTiles(g, kernelValues(model, g.layer)) }));
}
