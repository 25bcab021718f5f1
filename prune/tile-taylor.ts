import { batchLabels, batchPixels, type PreparedData } from '../datasets/prepare.js';
import { computeGradients, type StepContext } from '../train/step.js';
import { kernelOf, type Masks } from './masks.js';
import { tileColumns, tileCount, tileSums, type TileGrid } from './tiles.js';

/**
 * Per layer, per tile: the loss a tile's removal is expected to add, by the
 * group first-order Taylor criterion (Molchanov et al., 2019): removing the
 * tile's weights w changes a batch's loss by about −Σ w·∂L/∂w, and the mean
 * over batches of its square is the estimate. Unlike |w| or |w|·‖x‖, this is
 * in the loss's units in every layer, so tiles of different layers can be
 * ranked against each other (prune.allocation: global): an autoencoder's
 * output tiles, each the only source of its pixels, weigh what they cost.
 * `within`: only these weights go with the tile (the survivors of an
 * unstructured pass); the rest of the tile is zero already in effect.
 * `rows`: the same estimate for each whole output tile row, from the same
 * gradients (a row's change is the sum of its tiles' before squaring).
 */
export function tileTaylorScores(
  ctx: Omit<StepContext, 'rangePenalty'>,
  grids: TileGrid[],
  data: Pick<PreparedData, 'train' | 'shape' | 'normalization'>,
  o: { samples?: number; batchSize?: number; within?: Masks } = {},
): { tiles: Map<string, Float64Array>; rows: Map<string, Float64Array> } {
  const n = Math.min(o.samples ?? 512, data.train.count);
  const batch = o.batchSize ?? 32;
  const index = new Map(ctx.model.trainableWeights.map((w, i) => [w, i]));
  const kernels = grids.map((g) => {
    const v = kernelOf(ctx.model, g.layer);
    const at = index.get(v);
    if (at === undefined) throw new Error(`prune: the kernel of ${g.layer} is not a trainable weight`);
    const w = v.read().dataSync() as Float32Array;
    const m = o.within?.get(g.layer);
    return { g, at, w: m ? Float32Array.from(w, (x, k) => x * m[k]) : w };
  });
  const scores = new Map(grids.map((g) => [g.layer, new Float64Array(tileCount(g))]));
  const rowScores = new Map(grids.map((g) => [g.layer, new Float64Array(tileCount(g) / tileColumns(g))]));
  let batches = 0;
  for (let start = 0; start < n; start += batch) {
    const idx = Int32Array.from({ length: Math.min(batch, n - start) }, (_, i) => start + i);
    const r = computeGradients(ctx, {
      xs: batchPixels(data.train, idx, data.shape, data.normalization),
      labels: batchLabels(data.train, idx),
      count: idx.length,
    });
    try {
      for (const { g, at, w } of kernels) {
        const grad = r.grads[at].dataSync();
        // Gradients are summed over the batch: divide for the mean loss's change.
        const sum = tileSums(g, (k) => (w[k] * grad[k]) / idx.length);
        const s = scores.get(g.layer)!,
          rs = rowScores.get(g.layer)!,
          cols = tileColumns(g);
        for (let t = 0; t < s.length; t++) s[t] += sum[t] ** 2;
        for (let r = 0; r < rs.length; r++) rs[r] += sum.subarray(r * cols, (r + 1) * cols).reduce((a, v) => a + v, 0) ** 2;
      }
    } finally {
      for (const t of r.grads) t.dispose();
    }
    batches++;
  }
  for (const s of [...scores.values(), ...rowScores.values()]) for (let t = 0; t < s.length; t++) s[t] /= batches;
  return { tiles: scores, rows: rowScores };
}
