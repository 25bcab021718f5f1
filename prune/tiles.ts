import type * as tf from '@tensorflow/tfjs';
import { UserError } from '../common/errors.js';
import type { Plan } from '../plan/plan.js';
import { occupiedRows, pow2Below, tileOrientation } from '../plan/packing.js';
import { mapSteps } from '../plan/provenance.js';
import type { Masks } from './masks.js';

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
  layer: string;
  nIn: number;
  nOut: number;
  outTile: number;
  inTile: number;
  clientIn?: boolean;
  clientOut?: boolean;
  inPos?: Int32Array;
  outPos?: Int32Array;
  /** Input positions span [0, inSpan) (default nIn): more when the layout leaves gaps (a CNN's conv rows, see convRowPositions). */
  inSpan?: number;
}

export function tileGrids(model: tf.LayersModel, plan: Plan): TileGrid[] {
  if (!plan.tiles) throw new UserError('prune: tile and neuron pruning need tile-tensor packing (set export.tiles: auto or a tile shape)');
  const { t1, t2, first } = plan.tiles;
  // The tiled maps are the plan's linear maps from plan.tiles.from on (a CNN's dense layers after its convolutions), each one dense layer.
  const from = plan.tiles.from ?? 0;
  const steps = mapSteps(plan).slice(from);
  const dense = steps.map((st) => {
    const [name, ...rest] = st.layers!;
    const l = model.layers.find((x) => x.name === name);
    if (!l || rest.length || l.getClassName() !== 'Dense')
      throw new UserError(
        `prune: plan step ${st.name} is tiled but holds ${st.layers!.join(' + ') || 'no layer'}, not one dense layer of the model`,
      );
    return l;
  });
  const grids = dense.map((l, i): TileGrid => {
    const [nIn, nOut] = l.getWeights()[0].shape;
    const outer = tileOrientation(first, i) === 'outer';
    const g: TileGrid = {
      layer: l.name,
      nIn,
      nOut,
      outTile: outer ? t2 : t1,
      inTile: outer ? t1 : t2,
      clientIn: i === 0 && from === 0,
      clientOut: i === dense.length - 1,
    };
    return i === 0 && plan.tiles!.convRows ? { ...g, ...convRowPositions(plan, plan.steps.indexOf(steps[0]), l.name, nIn) } : g;
  });
  return withBoundaryOrders(grids, plan.tiles);
}

/**
 * Where the first tiled layer of a CNN (export.tileFirstDense) reads each input: the `rows` step puts the elements of
 * the k-th occupied row of t2 slots of the conv layout in input tile k at their column c: position k·t2 + c. Fixed by
 * the convolutions' layout (not a boundary HE-PEx may permute); read off the layout the rows step reads, so a pruned
 * plan (whose unread rows are dropped) gives the same grid.
 */
function convRowPositions(plan: Plan, at: number, layer: string, nIn: number): Pick<TileGrid, 'inPos' | 'inSpan'> {
  const { t2 } = plan.tiles!;
  // The rows step moves data only: a linear step with no layers of its own, right before the first tiled map.
  const rows = at >= 2 ? plan.steps[at - 1] : undefined;
  if (rows?.kind !== 'linear' || rows.layers) throw new Error(`prune: plan step ${plan.steps[at].name} does not read a rows step`);
  const conv = plan.steps[at - 2].out;
  if (conv.slotOf.length !== nIn)
    throw new UserError(`prune: layer ${layer} reads ${nIn} inputs, the plan's conv output holds ${conv.slotOf.length}`);
  const inPos = new Int32Array(nIn);
  const occupied = occupiedRows(conv, plan.slots, plan.tiles!);
  [...occupied.values()].forEach((elements, k) => {
    for (const e of elements) inPos[e] = k * t2 + ((conv.slotOf[e] % plan.slots) % t2);
  });
  return { inPos, inSpan: occupied.size * t2 };
}

/** The boundary orders of the grids, for the plan (export.tiles inputOrder / outputOrder). */
export function boundaryOrders(grids: TileGrid[]): { inputOrder?: number[]; outputOrder?: number[] } {
  const first = grids[0],
    last = grids[grids.length - 1];
  // Only the client's boundary has an order (a CNN's first tiled layer has positions the conv layout fixes).
  return {
    ...(first?.clientIn && first.inPos ? { inputOrder: Array.from(first.inPos) } : {}),
    ...(last?.clientOut && last.outPos ? { outputOrder: Array.from(last.outPos) } : {}),
  };
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
/** Rotations of one output tile row: the rotate-and-sum over a tile's inputs, as the compiler's tileStep does it. */
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

/** Weight masks from kept tiles: every weight of a kept tile (expansion), or only those `within` also keeps. */
export function tileMasks(grids: TileGrid[], kept: Map<string, Uint8Array>, within?: Masks): Masks {
  return new Map(
    grids.map((g) => {
      const keep = kept.get(g.layer)!,
        inner = within?.get(g.layer);
      const m = new Float32Array(g.nIn * g.nOut);
      for (let i = 0; i < g.nIn; i++)
        for (let o = 0; o < g.nOut; o++) {
          const k = i * g.nOut + o;
          m[k] = keep[tileOf(g, i, o)] && (!inner || inner[k] !== 0) ? 1 : 0;
        }
      return [g.layer, m];
    }),
  );
}
