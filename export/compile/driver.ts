import { UserError } from '../../common/errors.js';
import { DepthError } from '../../he/params.js';
import { imageLayout, tileLayout, type Layout } from '../../plan/layout.js';
import { pow2Below, pow2Upto, tileOrientation } from '../../plan/packing.js';
import type { Plan, TileShape } from '../../plan/plan.js';
import { foldDeadNeurons } from '../dead-neurons.js';
import { sizeOf } from '../linear-map.js';
import type { HeChain } from '../lower.js';
import { cheapest } from './cheapest.js';
import { fusionChoices } from './fuse.js';
import { imageGeometry, perCtOf, type Geometry } from './geometry.js';
import type { BlockMode, CompileOptions } from './options.js';
import { cnnTiling, diagonalTarget, tiledTarget, type Target, type Tiling } from './target.js';
import { checkOrder, checkTileShape, tileOrders } from './tile-steps.js';
import { buildPlan, orderFor, type Candidate } from './walk.js';

/**
 * Compiles a lowered network to a plan. Candidate packings are enumerated —
 * channel block geometries for image layers, tile shapes and orientations
 * for tiled dense layers — and each goes through the same phases:
 *  1. geometry (geometry.ts): every image layer's grid and channel block;
 *  2. parameters (target.ts): depth and the CKKS parameters that hold it;
 *  3. layouts: the input's, with the client's copies;
 *  4. steps (walk.ts): per linear map, its square, replicate, pool and rows
 *     steps, then the map itself as diagonals (diagonal-steps.ts) or tiles
 *     (tile-steps.ts), with masked refresh where levels run out;
 *  5. finish (finish.ts): unread inputs dropped, client rotations, Galois keys.
 * A chain with factorised convolutions is compiled once per choice of
 * which pairs run split and which fused (fuse.ts). The cost model keeps the
 * cheapest (cheapest.ts).
 */
export function compileChain(chain: HeChain, o: CompileOptions = {}): Plan {
  const folded = o.tiles ? foldDeadNeurons(chain) : chain;
  return cheapest(fusedCandidates(folded, o), o.maxDepth);
}

/**
 * Every packing's candidates for every choice of factorised convolutions
 * split or fused (fuse.ts), each plan saying which. A choice too deep for
 * any 128-bit parameters (split pairs cost a level each) is skipped while
 * another fits; when none does, the shallowest one's error stands.
 */
function* fusedCandidates(chain: HeChain, o: CompileOptions): Generator<() => Plan> {
  let tooDeep: DepthError | undefined,
    fitted = false;
  for (const { chain: c, factorized, spread } of fusionChoices(chain, o.factorized, o.convPack)) {
    try {
      for (const build of candidates(c, o, spread)) {
        fitted = true;
        yield factorized ? () => ({ ...build(), factorized }) : build;
      }
    } catch (e) {
      if (!(e instanceof DepthError)) throw e;
      if (!tooDeep || e.levels < tooDeep.levels) tooDeep = e;
    }
  }
  if (!fitted && tooDeep) throw tooDeep;
}

function* candidates(chain: HeChain, o: CompileOptions, spread: ReadonlySet<number>): Generator<() => Plan> {
  // Fully connected: every layer tiled. A CNN keeps its convolutions (and the dense layer reading them) diagonal and tiles the dense layers after.
  if (o.tiles && chain.linears.every((m) => m.outShape.length === 1)) {
    yield* tiledCandidates(chain, o);
    return;
  }
  for (const mode of blockModes(chain, o)) yield* diagonalCandidates(chain, o, imageGeometry(chain, mode, spread));
}

/** The channel block geometries to try: the one asked for, or under auto those that can differ. */
function blockModes(chain: HeChain, o: CompileOptions): BlockMode[] {
  const mode = o.channelBlocks ?? 'auto';
  if (mode !== 'auto') return [mode];
  // Without image layers every geometry is the same plan.
  if (!imageGeometry(chain, 'tight').blocks.some(Boolean)) return ['tight'];
  // Multiplexing only changes plans with strided grids (after a pool or a strided conv).
  const strided = chain.pools.some(Boolean) || chain.linears.some((m) => m.stride > 1);
  return strided ? ['tight', 'pow2', 'mux'] : ['tight', 'pow2'];
}

/** One geometry's candidates: one plan, or one per tile shape when its dense layers are tiled. */
function* diagonalCandidates(chain: HeChain, o: CompileOptions, g: Geometry): Generator<() => Plan> {
  const tiling = cnnTiling(chain, o, g);
  const target = diagonalTarget(chain, o, g, tiling);
  const S = target.slots;
  // Phase 3: input layout; a single-channel input is copied once per channel
  // block of the first convolution, so every output channel reads its own copy
  // at the same offset: one diagonal per kernel tap, shared by all channels.
  const C = chain.inShape[2];
  const input = imageLayout(chain.inShape, g.input.strides, { slots: S, perCt: perCtOf(g.input, S), order: orderFor({ chain, o }, 0, C) });
  const copies =
    C === 1 && g.blocks[0]
      ? Array.from({ length: Math.min(chain.linears[0].outShape[2], perCtOf(g.blocks[0], S)) - 1 }, (_, i) => (i + 1) * g.input.block)
      : [];
  // A CNN's tiled layers read the convolutions' layout, so only their outputs can be permuted (HE-PEx, at pruning).
  if (tileOrders(o).inputOrder)
    throw new UserError(
      "export.tiles.inputOrder: in a network with convolutions the tiled layers read the convolutions' layout; the input cannot be permuted",
    );
  const base = { chain, o, target, input, inputCopies: copies, geometry: g, convSteps: new Map() };
  if (!tiling) {
    yield () => buildPlan(base);
    return;
  }
  for (const t2 of cnnTileWidths(chain, o, target, tiling, g)) {
    const tile: TileShape = {
      t1: S / t2,
      t2,
      first: tiling.first,
      from: tiling.from,
      ...(tiling.convRows ? { convRows: true } : {}),
      ...(tileOrders(o).outputOrder ? { outputOrder: tileOrders(o).outputOrder } : {}),
    };
    yield () => buildPlan({ ...base, tile });
  }
}

/**
 * Tile widths for the tiled layers of a CNN. Without a rows step the dense
 * layer reading the convolutions leaves its output periodic with period m (its
 * width, rounded up to a power of two): a tile tensor with t2 = m, copied along
 * t1 = S/m. With one, the shape is free: an explicit one, or every t2 from 16
 * to S/2.
 */
function cnnTileWidths(chain: HeChain, o: CompileOptions, target: Target, tiling: Tiling, g: Geometry): number[] {
  const S = target.slots;
  const firstDense = g.blocks.findIndex((b) => !b);
  const width = sizeOf(chain.linears[firstDense].outShape);
  const period = 2 ** Math.ceil(Math.log2(Math.max(1, width)));
  // Without a rows step the shape is not a choice: a shape given explicitly must be this one, rather than be silently replaced by it.
  if (!tiling.convRows && typeof o.tiles === 'object' && (o.tiles.t2 !== period || o.tiles.t1 !== S / period)) {
    throw new UserError(
      `export.tiles: {t1: ${o.tiles.t1}, t2: ${o.tiles.t2}}: in a network with convolutions the tile shape follows the first dense layer's width (${width}, period ${period}): t1 = ${S / period}, t2 = ${period} at N = ${target.params.polyModulusDegree}; use tiles: auto or that shape`,
    );
  }
  if (!tiling.convRows) return [period];
  checkTileShape(o, target.params);
  return typeof o.tiles === 'object' ? [o.tiles.t2] : pow2Upto(S / 2).filter((t) => t >= 16);
}

/** A fully-connected chain tile-packed (HE-PEx): every orientation and tile shape allowed, each with the parameters its depth needs. */
function* tiledCandidates(chain: HeChain, o: CompileOptions): Generator<() => Plan> {
  if (chain.pools.some(Boolean) || chain.skips.some(Boolean))
    throw new UserError('export.tiles: tile-tensor packing does not support pooling or residual connections');
  if (o.refresh) throw new UserError('export.tiles: tile-tensor packing does not support export.refresh');
  const firsts: TileShape['first'][] = typeof o.tiles === 'object' ? [o.tiles.first ?? 'outer'] : ['outer', 'inner'];
  for (const first of firsts) {
    const target = tiledTarget(chain, o, { from: 0, first, convRows: false });
    const S = target.slots;
    checkTileShape(o, target.params);
    const shapes = typeof o.tiles === 'object' ? [o.tiles.t2] : [...pow2Below(S), S];
    for (const t2 of shapes) {
      const tile: TileShape = { t1: S / t2, t2, first, ...tileOrders(o) };
      yield () => buildPlan({ chain, o, target, ...tiledInput(chain, tile, S), tile, convSteps: new Map() });
    }
  }
}

/** The input of a tiled chain: a tile vector along the first map's orientation, its copies written by the client. */
function tiledInput(chain: HeChain, tile: TileShape, S: number): Pick<Candidate, 'input' | 'inputCopies'> {
  const nIn = sizeOf(chain.inShape);
  const along = tileOrientation(tile.first, 0);
  checkOrder(tile.inputOrder, nIn, 'inputOrder');
  checkOrder(tile.outputOrder, sizeOf(chain.linears[chain.linears.length - 1].outShape), 'outputOrder');
  const input: Layout = { ...tileLayout(nIn, S, tile, along, { order: tile.inputOrder }), shape: [...chain.inShape] };
  // The client writes the copies: along c (outer input) or along r (inner input).
  const inputCopies =
    along === 'outer'
      ? Array.from({ length: tile.t2 - 1 }, (_, c) => c + 1)
      : Array.from({ length: tile.t1 - 1 }, (_, r) => (r + 1) * tile.t2);
  return { input, inputCopies };
}
