import * as tf from '@tensorflow/tfjs';
import { UserError } from '../common/errors.js';
import type { Masks } from './masks.js';
import { tileAt, tileColumns, type TileGrid } from './tiles.js';

/**
 * HE-PEx permutation: reordering the outputs of dense layer h together with
 * the inputs of layer h+1 leaves the network's function unchanged (the
 * activation between them is elementwise), but moves the surviving weights
 * of both into fewer tiles. perms[h][p] = the old index of the neuron now at
 * position p, for each hidden boundary h (outputs of grids[h]).
 */
export type Permutations = Int32Array<ArrayBuffer>[];

const identity = (n: number): Int32Array<ArrayBuffer> => Int32Array.from({ length: n }, (_, i) => i);
const inverse = (p: Int32Array): Int32Array<ArrayBuffer> => {
  const q = new Int32Array(p.length);
  p.forEach((old, pos) => {
    q[old] = pos;
  });
  return q;
};

/** Non-empty tiles of every layer with the hidden neurons permuted by `perms` (the boundary at the grids' own positions). */
export function countTiles(grids: TileGrid[], weights: Float32Array[], perms: Permutations): number {
  let total = 0;
  grids.forEach((g, l) => {
    const rowPos = l < perms.length ? inverse(perms[l]) : (g.outPos ?? identity(g.nOut));
    const colPos = l > 0 ? inverse(perms[l - 1]) : (g.inPos ?? identity(g.nIn));
    const seen = new Set<number>();
    const w = weights[l];
    for (let i = 0; i < g.nIn; i++) for (let o = 0; o < g.nOut; o++) if (w[i * g.nOut + o] !== 0) seen.add(tileAt(g, colPos[i], rowPos[o]));
    total += seen.size;
  });
  return total;
}

/**
 * The same clustering at the network's boundary: the client's input
 * elements by the output tile rows of the first layer they feed, the
 * network's outputs by the input tile columns of the last layer that feed
 * them. Nothing in the model moves: the grids get positions (inPos,
 * outPos) that the plan's input and output layouts carry, so the client
 * packs and reads in that order. Inputs no weight reads go last (their
 * tiles are empty and never sent). An order is kept unless it adds tiles.
 * Hidden neurons must be in place (perms applied).
 */
export function clusterBoundaries(grids: TileGrid[], weights: Float32Array[], iterations = 8): TileGrid[] {
  const out = grids.map((g) => ({ ...g }));
  const hidden = grids.slice(0, -1).map((g) => identity(g.nOut));
  const first = out[0],
    last = out[out.length - 1],
    L = out.length - 1;
  const settle = (g: TileGrid, key: 'inPos' | 'outPos', order: Int32Array) => {
    const before = countTiles(out, weights, hidden),
      old = g[key];
    g[key] = inverse(order);
    // Kept unless it adds tiles, even when it saves none among the survivors: gathering the weak inputs together is what
    // lets tile selection drop whole tiles of them (the AE at 50%: test MSE 6.8e-3 with such orders, 1.4e-2 without).
    // The identity is no order at all (the plan then carries none).
    if (countTiles(out, weights, hidden) > before || order.every((v, i) => v === i)) {
      if (old) g[key] = old;
      else delete g[key];
    }
  };
  if (first?.clientIn) {
    const rowPos = L > 0 ? identity(first.nOut) : (first.outPos ?? identity(first.nOut));
    const supports = Array.from({ length: first.nIn }, (_, i) => {
      const f = new Set<number>();
      for (let o = 0; o < first.nOut; o++) if (weights[0][i * first.nOut + o] !== 0) f.add(Math.floor(rowPos[o] / first.outTile));
      return [...f];
    });
    settle(first, 'inPos', clusterBoundary(supports, first.inTile, iterations));
  }
  if (last?.clientOut) {
    const colPos = L > 0 ? identity(last.nIn) : (last.inPos ?? identity(last.nIn));
    const supports = Array.from({ length: last.nOut }, (_, q) => {
      const f = new Set<number>();
      for (let i = 0; i < last.nIn; i++) if (weights[L][i * last.nOut + q] !== 0) f.add(Math.floor(colPos[i] / last.inTile));
      return [...f];
    });
    settle(last, 'outPos', clusterBoundary(supports, last.outTile, iterations));
  }
  return out;
}

/**
 * Balanced clustering of each boundary's neurons by the tiles their weights
 * touch in both adjacent layers (input tile columns of layer h, output tile
 * rows of layer h+1, under the neighbours' current permutations), clusters
 * of one tile's height: a cluster's tile count is the union of its members'
 * supports. Neurons with no weights go last (their tiles are empty). A few
 * passes over the boundaries; a boundary's new order is kept only if the
 * tile count does not grow, so the result never has more tiles than `start`.
 */
export function clusterPermutations(
  grids: TileGrid[],
  weights: Float32Array[],
  o: { passes?: number; iterations?: number; start?: Permutations } = {},
): Permutations {
  const perms = o.start?.map((p) => p.slice()) ?? grids.slice(0, -1).map((g) => identity(g.nOut));
  for (let pass = 0; pass < (o.passes ?? 3); pass++) {
    for (let h = 0; h < perms.length; h++) {
      const a = grids[h],
        b = grids[h + 1];
      if (a.outTile !== b.inTile)
        throw new Error(`permute: ${a.layer} outputs tiles of ${a.outTile}, ${b.layer} reads tiles of ${b.inTile}`);
      const colPos = h > 0 ? inverse(perms[h - 1]) : (a.inPos ?? identity(a.nIn));
      const rowPos = h + 1 < perms.length ? inverse(perms[h + 1]) : (b.outPos ?? identity(b.nOut));
      const inGroups = tileColumns(a);
      const supports = Array.from({ length: a.nOut }, (_, k) => {
        const f = new Set<number>();
        for (let i = 0; i < a.nIn; i++) if (weights[h][i * a.nOut + k] !== 0) f.add(Math.floor(colPos[i] / a.inTile));
        for (let q = 0; q < b.nOut; q++) if (weights[h + 1][k * b.nOut + q] !== 0) f.add(inGroups + Math.floor(rowPos[q] / b.outTile));
        return [...f];
      });
      const next = clusterBoundary(supports, a.outTile, o.iterations ?? 8);
      const before = countTiles(grids, weights, perms);
      const old = perms[h];
      perms[h] = next;
      if (countTiles(grids, weights, perms) > before) perms[h] = old;
    }
  }
  return perms;
}

/** Σ over clusters of |∪ supports|: the tiles the clusters touch. */
function unionCost(clusters: number[][], supports: number[][]): number {
  return clusters.reduce((a, c) => a + new Set(c.flatMap((k) => supports[k])).size, 0);
}

/** One boundary: clusters of ≤ size neurons with small support unions; returns the order (clusters in turn, dead neurons last). */
function clusterBoundary(supports: number[][], size: number, iterations: number): Int32Array<ArrayBuffer> {
  const live = supports.map((s, k) => k).filter((k) => supports[k].length > 0);
  const dead = supports.map((s, k) => k).filter((k) => supports[k].length === 0);
  const K = Math.ceil(live.length / size);
  // Start: neurons sorted by their support (lexicographically), in consecutive chunks.
  const key = (k: number) => supports[k].slice().sort((x, y) => x - y);
  const sorted = live.slice().sort((x, y) => {
    const a = key(x),
      b = key(y);
    for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
    return a.length - b.length;
  });
  let clusters = Array.from({ length: K }, (_, c) => sorted.slice(c * size, (c + 1) * size));
  let best = clusters,
    bestCost = unionCost(clusters, supports);
  for (let it = 0; it < iterations && K > 1; it++) {
    // Feature frequencies per cluster; the cost of adding k to c is the share of k's support c does not already cover.
    const freq = clusters.map((c) => {
      const m = new Map<number, number>();
      for (const k of c) for (const f of supports[k]) m.set(f, (m.get(f) ?? 0) + 1 / c.length);
      return m;
    });
    const pairs: { k: number; c: number; cost: number }[] = [];
    for (const k of live)
      for (let c = 0; c < K; c++) pairs.push({ k, c, cost: supports[k].reduce((a, f) => a + 1 - (freq[c].get(f) ?? 0), 0) });
    pairs.sort((x, y) => x.cost - y.cost || x.k - y.k || x.c - y.c);
    const placed = new Set<number>();
    const next: number[][] = Array.from({ length: K }, () => []);
    for (const p of pairs) {
      if (placed.has(p.k) || next[p.c].length >= size) continue;
      next[p.c].push(p.k);
      placed.add(p.k);
    }
    clusters = next.filter((c) => c.length > 0);
    const cost = unionCost(clusters, supports);
    if (cost < bestCost) {
      best = clusters;
      bestCost = cost;
    } else break;
  }
  return Int32Array.from([...best.flat(), ...dead]);
}

/** The dense layers' kernels and biases reordered by `perms` (same function), checked to be separated by elementwise layers only. */
export function permuteModel(model: tf.LayersModel, grids: TileGrid[], perms: Permutations): void {
  const layers = model.layers;
  perms.forEach((perm, h) => {
    const a = model.getLayer(grids[h].layer),
      b = model.getLayer(grids[h + 1].layer);
    const between = layers.slice(layers.indexOf(a) + 1, layers.indexOf(b));
    const bad = between.find((l) => l.getClassName() !== 'HePolyActivation');
    if (bad)
      throw new UserError(
        `prune.permute: ${bad.name} (${bad.getClassName()}) sits between ${a.name} and ${b.name}; only elementwise polynomial activations may (batch norm would need permuting too)`,
      );
    const [ka, ba] = a.getWeights();
    const [kb, bb] = b.getWeights();
    const g = grids[h];
    const wa = ka.dataSync(),
      wb = kb.dataSync();
    const na = new Float32Array(wa.length),
      nb = new Float32Array(wb.length);
    for (let i = 0; i < g.nIn; i++) for (let p = 0; p < g.nOut; p++) na[i * g.nOut + p] = wa[i * g.nOut + perm[p]];
    const nOut2 = grids[h + 1].nOut;
    for (let p = 0; p < g.nOut; p++) nb.set(wb.subarray(perm[p] * nOut2, (perm[p] + 1) * nOut2), p * nOut2);
    const bias = ba ? Float32Array.from(perm, (old) => (ba.dataSync() as Float32Array)[old]) : undefined;
    const ta = [tf.tensor(na, ka.shape), ...(bias ? [tf.tensor(bias, ba.shape)] : [])],
      tb = tf.tensor(nb, kb.shape);
    a.setWeights(ta);
    b.setWeights([tb, ...(bb ? [bb] : [])]);
    tf.dispose([...ta, tb]);
  });
}

/** Masks (and any per-weight arrays keyed by layer) reordered the same way. */
export function permuteMasks(masks: Masks, grids: TileGrid[], perms: Permutations): Masks {
  const out: Masks = new Map(masks);
  perms.forEach((perm, h) => {
    const g = grids[h],
      n2 = grids[h + 1].nOut;
    const a = out.get(g.layer),
      b = out.get(grids[h + 1].layer);
    if (a)
      out.set(
        g.layer,
        Float32Array.from(a, (_, e) => a[Math.floor(e / g.nOut) * g.nOut + perm[e % g.nOut]]),
      );
    if (b)
      out.set(
        grids[h + 1].layer,
        Float32Array.from(b, (_, e) => b[perm[Math.floor(e / n2)] * n2 + (e % n2)]),
      );
  });
  return out;
}
