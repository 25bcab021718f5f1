import { UserError } from '../../common/errors.js';
import { checkParams, DepthError, selectParams } from '../../he/params.js';
import { nextPow2, tileOrientation } from '../../plan/packing.js';
import type { HeParams } from '../../plan/params.js';
import type { TileShape } from '../../plan/plan.js';
import { sizeOf } from '../linear-map.js';
import type { HeChain } from '../lower.js';
import type { Geometry } from './geometry.js';
import type { CompileOptions } from './options.js';

/**
 * Phase "parameters": how deep a packing makes the chain (one level per
 * linear map, per square, per replicate or rows step of tile packing) and
 * the CKKS parameters that hold it.
 */

/** Where tile packing starts (linear map `from` on), the first tiled map's input orientation, and whether a rows step feeds it. */
export interface Tiling {
  from: number;
  first: TileShape['first'];
  convRows: boolean;
}

/** The parameters one candidate packing compiles to. */
export interface Target {
  params: HeParams;
  slots: number;
  top: number;
  depth: number;
}

/** Levels of the chain under a tiling: 2n − 1 less one per unsquared map (no square before it), plus one per replicate step (an outer-input tiled map after the first) and per rows step. */
export function depthOf(chain: HeChain, tiling?: Tiling): number {
  const n = chain.linears.length;
  let extra = 0;
  if (tiling)
    for (let li = Math.max(tiling.from, 1); li < n; li++) if (tileOrientation(tiling.first, li - tiling.from) === 'outer') extra++;
  const unsquared = chain.unsquared?.filter(Boolean).length ?? 0;
  return 2 * n - 1 - unsquared + extra + (tiling?.convRows ? 1 : 0);
}

/**
 * Tile packing in a network with convolutions (export.tiles): the dense
 * layers after the first dense one, which reads the conv layout; with
 * export.tileFirstDense, from that layer itself (its input rows copied by a
 * rows step). Undefined: no tiled layer.
 */
export function cnnTiling(chain: HeChain, o: CompileOptions, g: Geometry): Tiling | undefined {
  const firstDense = g.blocks.findIndex((b) => !b);
  if (o.tileFirstDense && !o.tiles) throw new UserError('export.tileFirstDense: needs export.tiles (auto or a tile shape)');
  const convRows = !!o.tiles && !!o.tileFirstDense && firstDense > 0;
  if (convRows) return { from: firstDense, first: 'inner', convRows };
  if (o.tiles && firstDense >= 0 && firstDense + 1 < chain.linears.length) return { from: firstDense + 1, first: 'inner', convRows };
  return undefined;
}

/**
 * The size of each rescale prime in the order a diagonal plan consumes its
 * levels (top first): each linear map a weightBits prime (it sets only its
 * weights' precision), each square after it a scaleBits one (it keeps the
 * scale). Undefined when every prime is the scale's size. A refreshed or
 * tiled plan interleaves other level-consuming steps: weightBits is refused
 * there rather than guessed.
 */
function primeBitsOf(chain: HeChain, o: CompileOptions, tiling?: Tiling): number[] | undefined {
  const scale = o.scaleBits ?? 40;
  if (o.weightBits === undefined || o.weightBits === scale) return undefined;
  if (o.refresh || tiling)
    throw new UserError('export.weightBits: applies to diagonal plans without export.refresh or export.tiles; leave it unset there');
  const n = chain.linears.length;
  return chain.linears.flatMap((_, i) => (i < n - 1 && !chain.unsquared?.[i + 1] ? [o.weightBits!, scale] : [o.weightBits!]));
}

/** A parameter choice under export.weightBits names the key in its error. */
function withWeightBits<T>(o: CompileOptions, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (!(e instanceof UserError) || o.weightBits === undefined || o.weightBits === (o.scaleBits ?? 40)) throw e;
    const message = `export.weightBits ${o.weightBits}: ${e.message}`;
    throw e instanceof DepthError ? new DepthError(message, e.levels) : new UserError(message);
  }
}

/** Parameters for diagonal packing of a geometry: its largest channel block and dense width in slots, the depth (or export.refresh's levels). */
export function diagonalTarget(chain: HeChain, o: CompileOptions, g: Geometry, tiling?: Tiling): Target {
  const depth = depthOf(chain, tiling);
  const denseWidth = Math.max(...chain.linears.filter((_, i) => !g.blocks[i]).map((m) => nextPow2(sizeOf(m.outShape))), 1);
  const need = { levels: o.refresh ? Math.min(o.refresh.levels, depth) : depth, slots: Math.max(g.largestBlock, denseWidth) };
  const primeBits = primeBitsOf(chain, o, tiling);
  const params =
    o.params ??
    withWeightBits(o, () =>
      selectParams({ ...need, scaleBits: o.scaleBits, headroomBits: o.headroomBits, ...(primeBits ? { primeBits } : {}) }),
    );
  if (o.params) checkParams(o.params, need);
  if (o.refresh) checkRefresh(o.refresh, params);
  return { params, slots: params.polyModulusDegree / 2, top: params.coeffModulusBits.length - 2, depth };
}

/** Parameters for a fully tiled chain: its depth, any slot count (a tile shape is chosen to fit). */
export function tiledTarget(chain: HeChain, o: CompileOptions, tiling: Tiling): Target {
  const depth = depthOf(chain, tiling);
  primeBitsOf(chain, o, tiling);
  const params = o.params ?? selectParams({ levels: depth, slots: 1, scaleBits: o.scaleBits, headroomBits: o.headroomBits });
  if (o.params) checkParams(o.params, { levels: depth, slots: 1 });
  return { params, slots: params.polyModulusDegree / 2, top: params.coeffModulusBits.length - 2, depth };
}

function checkRefresh(r: NonNullable<CompileOptions['refresh']>, params: HeParams): void {
  if (r.levels < 2)
    throw new UserError(`export.refresh.levels ${r.levels}: need at least 2 (a linear map and an activation between refreshes)`);
  const headroom = params.coeffModulusBits[0] - params.scaleBits;
  if (r.maskBits > headroom - 2) {
    throw new UserError(
      `export.refresh.maskBits ${r.maskBits}: masked values must stay below the first prime's headroom of ${headroom} bits above the scale; use at most ${headroom - 2} or raise export.headroomBits`,
    );
  }
}
