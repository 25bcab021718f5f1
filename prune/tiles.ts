import type * as tf from '@tensorflow/tfjs';
import { UserError } from '../common/errors.js';
import type { Plan } from '../plan/plan.js';
import { occupiedRows, pow2Below, tileOrientation } from '../export/tile-compile.js';
import type { Masks } from './masks.js';
import { GroupedConv2D } from '../train/layers/grouped-conv.js';

/**
 * The tile grid of each dense layer of a tile-packed plan: a tile is
 * `outTile` outputs × `inTile` inputs, one plaintext. A layer reading its
 * input along r has t2 outputs × t1 inputs per tile; along c, t1 × t2.
 * Kernels are tfjs [nIn, nOut]: weight (i, o) at i·nOut + o.
 * At the network's boundary (the client's input, the outputs) elements may
 * sit at permuted positions (`inPos`, `outPos`: HE-PEx permutation, applied
 * by the client's packing instead of the model); `clientIn`/`clientOut` say
 * whether that boundary is the client's and so may be permuted.
 */
export interface TileGrid {
  layer: string; nIn: number; nOut: number; outTile: number; inTile: number;
  clientIn?: boolean; clientOut?: boolean; inPos?: Int32Array; outPos?: Int32Array;
  /** Input positions span [0, inSpan) (default nIn): more when the layout leaves gaps (a CNN's conv rows, see convRowPositions). */
  inSpan?: number;
}

export function tileGrids(model: tf.LayersModel, plan: Plan): TileGrid[] {
  if (!plan.tiles) throw new UserError('prune: tile and neuron pruning need tile-tensor packing (set export.tiles: auto or a tile shape)');
  const { t1, t2, first } = plan.tiles;
  // Linear map i of the chain is the i-th weight layer; a CNN's tiled layers start at plan.tiles.from.
  const weightLayers = model.layers.filter((l) => l.getClassName() === 'Dense' || l instanceof GroupedConv2D);
  const from = plan.tiles.from ?? 0;
  const dense = weightLayers.slice(from);
  if (dense.some((l) => l.getClassName() !== 'Dense')) throw new UserError('prune: the tiled layers of this plan are not all dense layers of the model');
  const grids = dense.map((l, i): TileGrid => {
    const [nIn, nOut] = l.getWeights()[0].shape;
    const outer = tileOrientation(first, i) === 'outer';
    const g: TileGrid = { layer: l.name, nIn, nOut, outTile: outer ? t2 : t1, inTile: outer ? t1 : t2, clientIn: i === 0 && from === 0, clientOut: i === dense.length - 1 };
    return i === 0 && plan.tiles!.convRows ? { ...g, ...convRowPositions(plan, l.name, nIn) } : g;
  });
  return withBoundaryOrders(grids, plan.tiles);
}

/**
 * Where the first tiled layer of a CNN (export.tileFirstDense) reads each input: the `rows` step puts the elements of
 * the k-th occupied row of t2 slots of the conv layout in input tile k at their column c: position k·t2 + c. Fixed by
 * the convolutions' layout (not a boundary HE-PEx may permute); read off the layout the rows step reads, so a pruned
 * plan (whose unread rows are dropped) gives the same grid.
 */
function convRowPositions(plan: Plan, layer: string, nIn: number): Pick<TileGrid, 'inPos' | 'inSpan'> {
  const { t2, from } = plan.tiles!;
  const at = plan.steps.findIndex((st) => st.name === `linear${from! + 1}`);
  if (at < 2 || !plan.steps[at - 1].name.startsWith('rows')) throw new Error(`prune: plan step linear${from! + 1} does not read a rows step`);
  const conv = plan.steps[at - 2].out;
  if (conv.slotOf.length !== nIn) throw new UserError(`prune: layer ${layer} reads ${nIn} inputs, the plan's conv output holds ${conv.slotOf.length}`);
  const inPos = new Int32Array(nIn);
  const rows = occupiedRows(conv, plan.slots, plan.tiles!);
  [...rows.values()].forEach((elements, k) => { for (const e of elements) inPos[e] = k * t2 + (conv.slotOf[e] % plan.slots) % t2; });
  return { inPos, inSpan: rows.size * t2 };
}

/** The boundary orders of the grids, for the plan (export.tiles inputOrder / outputOrder). */
export function boundaryOrders(grids: TileGrid[]): { inputOrder?: number[]; outputOrder?: number[] } {
  const first = grids[0], last = grids[grids.length - 1];
  // Only the client's boundary has an order (a CNN's first tiled layer has positions the conv layout fixes).
  return { ...(first?.clientIn && first.inPos ? { inputOrder: Array.from(first.inPos) } : {}), ...(last?.clientOut && last.outPos ? { outputOrder: Array.from(last.outPos) } : {}) };
}

/** The grids with boundary orders set (from a plan's tiles or a finished round's marker), on the client's boundaries only. */
export function withBoundaryOrders(grids: TileGrid[], o: { inputOrder?: number[]; outputOrder?: number[] }): TileGrid[] {
  return grids.map((g) => ({
    ...g,
    ...(g.clientIn && o.inputOrder ? { inPos: Int32Array.from(o.inputOrder) } : {}),
    ...(g.clientOut && o.outputOrder ? { outPos: Int32Array.from(o.outputOrder) } : {}),
  }));
}

/** Input tile columns of a layer's grid (a tile row is this many tiles). */
export const tileColumns = (g: TileGrid) => Math.ceil((g.inSpan ?? g.nIn) / g.inTile);
export const tileCount = (g: TileGrid) => Math.ceil(g.nOut / g.outTile) * tileColumns(g);
/** Rotations of one output tile row: the rotate-and-sum over a tile's inputs, as export/tile-compile's tileStep does it. */
export const rowRotations = (g: TileGrid) => pow2Below(g.inTile).length;
/** Tile index of the weight at positions (input p, output q): row-major over (output tile, input tile). */
export const tileAt = (g: TileGrid, p: number, q: number) => Math.floor(q / g.outTile) * tileColumns(g) + Math.floor(p / g.inTile);
/** Tile index of weight (i, o), through the boundary permutations. */
export const tileOf = (g: TileGrid, i: number, o: number) => tileAt(g, g.inPos ? g.inPos[i] : i, g.outPos ? g.outPos[o] : o);

/** Per tile: Σ of `value(k)` over its weights k (tfjs [nIn, nOut] order). */
export function tileSums(g: TileGrid, value: (k: number) => number): Float64Array {
  const s = new Float64Array(tileCount(g));
  for (let i = 0; i < g.nIn; i++) for (let o = 0; o < g.nOut; o++) s[tileOf(g, i, o)] += value(i * g.nOut + o);
  return s;
}

/** Per tile: Σ|w·mask| (the importance of what survives in it). */
export function tileScores(g: TileGrid, w: Float32Array, mask?: Float32Array): Float64Array {
  return tileSums(g, (k) => Math.abs(w[k] * (mask ? mask[k] : 1)));
}

/** Tiles holding at least one non-zero weight (what the plan stores and multiplies). */
export function nonEmptyTiles(g: TileGrid, w: Float32Array): number {
  const s = tileScores(g, w);
  return s.reduce((a, v) => a + (v !== 0 ? 1 : 0), 0);
}

/**
 * Tile pruning by importance. A tile's importance is Σ|w·mask| of its
 * importance-weighted kernel (`mask`: the surviving weights, e.g. of an
 * unstructured pass), or `rank.scores` when given (e.g. the Taylor estimate
 * of the loss its removal adds, see tile-taylor). Per layer (default), the
 * least important tiles go until `fraction` of each layer's tiles are gone;
 * with `rank.global`, the least important tiles of all layers together go
 * until `fraction` of all tiles are gone (scores must then be comparable
 * across layers), each layer keeping at least one. A tile already empty
 * counts as removed, and so is a tile that reads only neurons the previous
 * layer no longer computes; a hidden tile row that no kept tile reads goes
 * too. (A whole output tile row may go: those outputs become constants,
 * hidden ones folded into the next layer, final ones the client's.)
 *
 * With `rank.rows` (cost-aware, prune.allocation: cost), what goes is
 * chosen by expected loss per HE cost saved, as SpENCNN's sub-block order
 * does: a tile saves one plaintext multiplication, a whole output tile row
 * also its rotate-and-sum (`rotationWeight` multiplications per rotation),
 * and so does a row's last tile. A row still whole is scored by
 * `rank.rows`; once some of its tiles are gone, by the sum of its live
 * tiles' scores. Removal may overshoot the target by the rest of a row.
 * Returns which tiles are kept.
 */
export function selectTiles(grids: TileGrid[], kernels: Map<string, Float32Array>, fraction: number, masks?: Masks,
  rank?: { scores: Map<string, Float64Array>; global?: boolean; rows?: Map<string, Float64Array>; rotationWeight?: number }): Map<string, Uint8Array> {
  const kept = new Map<string, Uint8Array>();
  const colsOf = tileColumns;
  /** Output tile rows of a layer with no kept tile. */
  const deadRows = (g: TileGrid, keep: Uint8Array) => {
    const cols = colsOf(g);
    return new Set(Array.from({ length: keep.length / cols }, (_, r) => r).filter((r) => !keep.slice(r * cols, (r + 1) * cols).some(Boolean)));
  };
  const layers = grids.map((g) => {
    const s = tileScores(g, kernels.get(g.layer)!, masks?.get(g.layer));
    return { g, keep: Uint8Array.from(s, (v) => (v !== 0 ? 1 : 0)), score: rank?.scores.get(g.layer) ?? s };
  });
  /** Each layer's kept tiles less those that read only neurons the layer before no longer computes (forward through the layers). */
  const liveKeeps = () => {
    let dead = new Set<number>();
    return layers.map((x) => {
      const cols = colsOf(x.g), prev = dead;
      const live = x.keep.map((v, t) => (v && !prev.has(t % cols) ? 1 : 0));
      dead = deadRows(x.g, live);
      return live;
    });
  };
  /**
   * Whether every layer still keeps a tile that reads a computed neuron. Ranked across layers, removing a hidden tile
   * row can leave the next layer only tiles reading it (they compute nothing), so a removal that would is skipped.
   */
  const connected = () => liveKeeps().every((k) => k.some(Boolean));
  /** Removes the least important kept tiles among `cands` until `removed` reaches `target`, leaving each layer at least one tile it can use. */
  const removeLeast = (cands: { l: number; t: number }[], removed: number, target: number) => {
    const left = layers.map((x) => x.keep.reduce((a, v) => a + v, 0));
    const order = cands.filter(({ l, t }) => layers[l].keep[t]).sort((a, b) => layers[a.l].score[a.t] - layers[b.l].score[b.t]);
    for (const { l, t } of order) {
      if (removed >= target) break;
      // A layer keeps at least one tile (with two tiles, 60% would otherwise remove the whole layer).
      if (left[l] <= 1) continue;
      layers[l].keep[t] = 0;
      if (!connected()) { layers[l].keep[t] = 1; continue; }
      left[l]--;
      removed++;
    }
  };
  /** Cost-aware removal: the tile or whole row with the least expected loss per cost saved, until `removed` reaches `target`. */
  const removeByCost = (rows: Map<string, Float64Array>, rotationWeight: number, removed: number, target: number) => {
    const left = layers.map((x) => x.keep.reduce((a, v) => a + v, 0));
    const refused = new Set<string>();
    while (removed < target) {
      let best: { l: number; tiles: number[] } | undefined, bestRatio = Infinity;
      const consider = (l: number, tiles: number[], loss: number, cost: number) => {
        if (loss / cost < bestRatio && !refused.has(`${l}:${tiles}`)) { bestRatio = loss / cost; best = { l, tiles }; }
      };
      layers.forEach((x, l) => {
        const cols = colsOf(x.g), rotations = rotationWeight * rowRotations(x.g), rowScore = rows.get(x.g.layer)!;
        for (let r = 0; r < x.keep.length / cols; r++) {
          const live: number[] = [];
          for (let t = r * cols; t < (r + 1) * cols; t++) if (x.keep[t]) live.push(t);
          if (!live.length) continue;
          const whole = live.length === cols ? rowScore[r] : live.reduce((a, t) => a + x.score[t], 0);
          // A layer keeps at least one tile.
          if (left[l] > live.length) consider(l, live, whole, live.length + rotations);
          if (left[l] > 1) for (const t of live) consider(l, [t], x.score[t], 1 + (live.length === 1 ? rotations : 0));
        }
      });
      if (!best) break;
      const { l, tiles } = best as { l: number; tiles: number[] };
      for (const t of tiles) layers[l].keep[t] = 0;
      if (!connected()) { for (const t of tiles) layers[l].keep[t] = 1; refused.add(`${l}:${tiles}`); continue; }
      left[l] -= tiles.length;
      removed += tiles.length;
    }
  };
  const tilesOf = (l: number) => [...layers[l].keep.keys()].map((t) => ({ l, t }));
  const removedOf = (l: number) => layers[l].keep.length - layers[l].keep.reduce((a, v) => a + v, 0);
  // Tiles that read only neurons the previous layer no longer computes do nothing: gone.
  const dropDeadReads = () => liveKeeps().forEach((k, l) => { layers[l].keep = k; });
  if (rank?.global) {
    const total = layers.reduce((a, x) => a + x.keep.length, 0);
    const removed = layers.reduce((a, _, l) => a + removedOf(l), 0);
    if (rank.rows) removeByCost(rank.rows, rank.rotationWeight ?? 12, removed, Math.ceil(fraction * total));
    else removeLeast(layers.flatMap((_, l) => tilesOf(l)), removed, Math.ceil(fraction * total));
    dropDeadReads();
  } else {
    layers.forEach((x, l) => {
      dropDeadReads();
      removeLeast(tilesOf(l), removedOf(l), Math.min(Math.ceil(fraction * x.keep.length), x.keep.length - 1));
    });
  }
  // A layer whose every tile reads neurons the layer before no longer computes (the removals above avoid making one; prior masks may have).
  const empty = layers.find((x) => !x.keep.some(Boolean));
  if (empty) throw new UserError(`prune: tile pruning to ${fraction.toFixed(3)} of ${rank?.global ? 'all' : 'each layer\'s'} tiles left no tile of layer ${empty.g.layer} that reads a computed neuron; lower prune.sparsity${rank?.global ? ' or use prune.allocation: layer' : ''}`);
  for (const x of layers) kept.set(x.g.layer, x.keep);
  // Backwards: a hidden tile row no kept tile of the next layer reads computes nothing anyone uses.
  for (let l = grids.length - 2; l >= 0; l--) {
    const g = grids[l], next = grids[l + 1], cols = colsOf(g), nextCols = colsOf(next);
    const keep = kept.get(g.layer)!, nextKeep = kept.get(next.layer)!;
    for (let r = 0; r < keep.length / cols; r++) {
      const read = Array.from({ length: nextKeep.length / nextCols }, (_, q) => nextKeep[q * nextCols + r]).some(Boolean);
      if (!read) keep.fill(0, r * cols, (r + 1) * cols);
    }
  }
  return kept;
}

/** Weight masks from kept tiles: every weight of a kept tile (expansion), or only those `within` also keeps. */
export function tileMasks(grids: TileGrid[], kept: Map<string, Uint8Array>, within?: Masks): Masks {
  return new Map(grids.map((g) => {
    const keep = kept.get(g.layer)!, inner = within?.get(g.layer);
    const m = new Float32Array(g.nIn * g.nOut);
    for (let i = 0; i < g.nIn; i++) for (let o = 0; o < g.nOut; o++) {
      const k = i * g.nOut + o;
      m[k] = keep[tileOf(g, i, o)] && (!inner || inner[k] !== 0) ? 1 : 0;
    }
    return [g.layer, m];
  }));
}
