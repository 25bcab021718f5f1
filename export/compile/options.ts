import type { HeParams } from '../../plan/params.js';

export interface CompileOptions {
  /** Explicit parameters (checked); otherwise the smallest secure ones are chosen. */
  params?: HeParams;
  scaleBits?: number;
  /** Bits of linear steps' rescale primes (default scaleBits; see target.ts primeBitsOf). */
  weightBits?: number;
  headroomBits?: number;
  /** Baby-step/giant-step rotations (default on); off: every diagonal is its own rotation of the input. */
  bsgs?: boolean;
  /** Galois key memory allowed; past it, a ±2^i basis plus the most used steps, rotations composed (default 512 MiB). */
  maxGaloisKeyBytes?: number;
  /**
   * Channel block size of image layouts: `tight` (just the grid), `pow2`
   * (rounded up to a power of two, so blocks tile a ciphertext exactly and a
   * rotation by whole blocks is cyclic: a layer with b channels per
   * ciphertext needs b channel shifts, not 2b−1), or `auto` (default):
   * compile both and keep the one the cost model says is cheaper. `mux`:
   * power-of-two blocks, multiplexed (strided grids share blocks, see
   * plan/layout's Multiplex); auto tries it too when grids are strided.
   */
  channelBlocks?: BlockMode | 'auto';
  /**
   * Masked refresh for networks deeper than the parameters hold: parameters
   * for `levels` levels, and a refresh (client round trip) wherever the
   * levels run out. Masks are uniform in ±2^maskBits; they must fit the
   * first prime's headroom above the scale, with the activations themselves.
   */
  refresh?: { levels: number; maskBits: number };
  /**
   * Tile-tensor packing for fully-connected networks (see tile-steps):
   * a tile shape (t1·t2 = slots) and the first map's input orientation, or
   * `auto`: every power-of-two shape and both orientations, the cheapest by
   * the cost model. Absent: the diagonal (hybrid) method.
   */
  tiles?: 'auto' | { t1: number; t2: number; first?: 'outer' | 'inner'; inputOrder?: number[]; outputOrder?: number[] };
  /**
   * With `tiles`, in a network with convolutions: the dense layer reading the
   * convolutions is tile-packed too, its input rows split and copied by a
   * `rows` step (rowsStep); otherwise it is diagonal-packed and only the
   * dense layers after it are tiled.
   */
  tileFirstDense?: boolean;
  /**
   * Channel order of a tensor a grouped convolution reads: `interleaved`
   * (default; SpENCNN: channel c of group g at position c·G + g, one rotation
   * per channel shift for every group) or `contiguous` (group by group).
   */
  groupOrder?: 'interleaved' | 'contiguous';
  /**
   * Factorised convolutions (FFConv): each pair as two linear steps
   * (`split`), composed into one (`fused`), or `auto` (default): every
   * combination, the cheapest by the cost model (see fuse.ts).
   */
  factorized?: 'auto' | 'split' | 'fused';
  /**
   * Split factorised convolutions' layouts (FFConv's ConvPack, see fuse.ts):
   * channel blocks (`none`), one channel per ciphertext between the halves
   * (`reads`) or also after the 1×1 half (`both`, only when asked), or
   * `auto` (default): none or reads, the cheaper by the cost model.
   */
  convPack?: 'auto' | 'none' | 'reads' | 'both';
  /**
   * The client sends the input rotated by each of the first layer's baby
   * steps (one more ciphertext each), so the server skips those rotations,
   * the costliest of the plan (at the top level). `babies`: the baby steps
   * of the usual baby-step/giant-step split; `all`: the first layer has no
   * giant steps, every diagonal is a client rotation (no server rotation,
   * one rescale, one ciphertext per diagonal sent). Absent: off.
   */
  clientRotations?: 'babies' | 'all';
  /**
   * The deepest plan to keep: candidate packings with more levels are
   * skipped (a factorised pair split costs a level more than fused), so the
   * cheapest plan within a depth budget wins over a cheaper, deeper one.
   */
  maxDepth?: number;
}

/** Channel blocks of one candidate geometry (see CompileOptions.channelBlocks). */
export type BlockMode = 'tight' | 'pow2' | 'mux';

/**
 * Bumped whenever the same model and options compile to a different plan
 * (2: unread input ciphertexts dropped; 3: tileFirstDense's unread conv rows dropped). Part of the export stage's
 * fingerprint, so re-running a pipeline re-exports with the new compiler.
 */
export const COMPILER_VERSION = 3;
