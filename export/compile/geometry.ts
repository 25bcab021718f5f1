import { UserError } from '../../common/errors.js';
import { nextPow2 } from '../../plan/packing.js';
import type { Multiplex } from '../../plan/layout.js';
import type { HeChain } from '../lower.js';
import type { BlockMode } from './options.js';

/**
 * An image layer's grid: strides, channel block, how many channels share a
 * block (multiplexing, f² of them), and the blocks per ciphertext when not
 * as many as fit (perCt 1: one channel per ciphertext, FFConv's ConvPack).
 */
export interface ImageGeom {
  strides: { c: number; y: number; x: number };
  block: number;
  mux: number;
  perCt?: number;
}

/**
 * Phase "geometry": every image layer keeps the previous layer's grid
 * (subsampled by its stride), one channel per block, as many blocks per
 * ciphertext as fit. Independent of N, so it comes before the parameters.
 */
export interface Geometry {
  mode: BlockMode;
  /** The network input's grid. */
  input: ImageGeom;
  /** The grid linear map i writes (undefined: a vector, the map is dense). */
  blocks: (ImageGeom | undefined)[];
  /** The grid linear map i reads: its predecessor's, or that subsampled by a sum pool. */
  reads: (ImageGeom | undefined)[];
  largestBlock: number;
}

/** `spread`: the linear maps whose outputs hold one channel per ciphertext (unmultiplexed). */
export function imageGeometry(chain: HeChain, mode: BlockMode, spread: ReadonlySet<number> = new Set()): Geometry {
  const [H, W] = chain.inShape;
  const align = mode !== 'tight',
    mux = mode === 'mux';
  const blockOf = (n: number) => (align ? nextPow2(n) : n);
  const input: ImageGeom = { strides: { c: blockOf(H * W), y: W, x: 1 }, block: blockOf(H * W), mux: 1 };
  const blocks: (ImageGeom | undefined)[] = [],
    reads: (ImageGeom | undefined)[] = [];
  let g: ImageGeom | undefined = input;
  for (const [li, m] of chain.linears.entries()) {
    const k = chain.pools[li];
    if (k) {
      if (!g || li === 0) throw new UserError(`linear${li + 1}: a sum pool needs an image layer with an activation before it`);
      // Pooling keeps where channels sit; only the grid gets coarser.
      g = { ...g, strides: { c: g.strides.c, y: g.strides.y * k, x: g.strides.x * k } };
    }
    reads.push(g);
    if (m.outShape.length === 3 && g) {
      const [oh, ow] = m.outShape;
      const ys: number = g.strides.y * m.stride,
        xs: number = g.strides.x * m.stride;
      // Multiplexed: the grid's stride relative to the input grid (x stride 1) is how many channels share each row and column gap.
      const one = spread.has(li);
      const f = mux && !one && ys === xs * W ? xs : 1;
      // Padding can make the output grid outgrow the input's channel block.
      const block: number = blockOf(Math.max(g.block, (oh - 1) * ys + (ow - 1) * xs + 1 + (f - 1) * (W + 1)));
      g = { strides: { c: block, y: ys, x: xs }, block, mux: f, ...(one ? { perCt: 1 } : {}) };
    } else {
      g = undefined;
    }
    blocks.push(g);
  }
  const largestBlock = Math.max(input.block, ...blocks.map((b) => b?.block ?? 0));
  return { mode, input, blocks, reads, largestBlock };
}

/** Channel blocks per ciphertext of S slots (each holding mux² channels). */
export const perCtOf = (b: ImageGeom, S: number) => b.perCt ?? Math.floor(S / b.block);

/** The layout's multiplexing of a grid in an input W wide. */
export const muxOf = (b: ImageGeom, W: number): Multiplex | undefined => (b.mux > 1 ? { f: b.mux, y: W, x: 1 } : undefined);
