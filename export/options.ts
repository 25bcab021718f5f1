import { z } from 'zod';
import type { CompileOptions } from './compile/options.js';

/** The `export:` section of a config. */
export const exportSchema = z
  .object({
    scaleBits: z
      .number()
      .int()
      .min(20)
      .max(59)
      .default(40)
      .describe('CKKS scale 2^scaleBits (smaller fits more levels in a smaller N, with less precision)'),
    weightBits: z
      .number()
      .int()
      .min(20)
      .max(59)
      .optional()
      .describe(
        "bits of the rescale primes of linear steps (default: scaleBits). A linear step encodes its weights at its level's prime, so that prime sets only the weights' precision; squares keep scaleBits-sized primes. Fewer bits per linear level free modulus for more levels at the same N (a deeper plan, such as split factorised convolutions, may then stay at N=16384). Diagonal plans without refresh or tiles",
      ),
    headroomBits: z
      .number()
      .int()
      .min(4)
      .max(30)
      .default(20)
      .describe("bits of the first prime above the scale (room for the outputs' integer part)"),
    polyModulusDegree: z.number().int().optional().describe('explicit N (with coeffModulusBits); checked for 128-bit security and depth'),
    coeffModulusBits: z.array(z.number().int()).optional().describe('explicit modulus chain [first, rescale primes…, special]'),
    bsgs: z.boolean().default(true).describe('baby-step/giant-step rotations'),
    channelBlocks: z
      .enum(['auto', 'tight', 'pow2', 'mux'])
      .default('auto')
      .describe(
        "image channel blocks: tight grids, power-of-two blocks (cyclic channel shifts), power-of-two blocks multiplexed (channels share a strided grid's gaps), or whichever the cost model finds cheaper",
      ),
    groupOrder: z
      .enum(['interleaved', 'contiguous'])
      .default('interleaved')
      .describe(
        'channel order of tensors read by grouped convolutions: SpENCNN group-interleaved (channel c of group g at c·G+g: one rotation per channel shift serves every group) or contiguous (group by group)',
      ),
    maxQuadraticShift: z
      .number()
      .positive()
      .default(64)
      .describe(
        'largest |β/2α| of a quadratic activation merged into one square (HEMET); a nearly linear activation past it is computed unmerged, as y² + λ·y of a rescaled input: one plaintext product more per ciphertext, no extra level (merged, it would lose CKKS precision)',
      ),
    refresh: z
      .object({
        levels: z.number().int().min(2).describe('levels between refreshes: the parameters are chosen for this many'),
        maskBits: z
          .number()
          .int()
          .min(0)
          .max(40)
          .default(12)
          .describe(
            'refresh masks are uniform in ±2^maskBits: they hide activations much smaller than that from the client (about maskBits − log2|activation| bits) and must fit the headroom above the scale with them (maskBits ≤ headroomBits − 2)',
          ),
      })
      .strict()
      .optional()
      .describe('masked refresh (a client round trip) for networks deeper than 128-bit parameters hold'),
    tiles: z
      .union([
        z.literal('auto'),
        z
          .object({
            t1: z.number().int().positive().describe('outer tile dimension (rows of slots)'),
            t2: z.number().int().positive().describe('inner tile dimension; t1·t2 must equal the slots (N/2)'),
            first: z
              .enum(['outer', 'inner'])
              .default('outer')
              .describe('the first layer reads its input along t1 (outer) or t2 (inner); layers alternate'),
          })
          .strict(),
      ])
      .optional()
      .describe(
        'tile-tensor packing of fully-connected networks (HE-PEx): a tile shape, or auto (the cost model picks shape and orientation); absent: diagonal packing',
      ),
    tileFirstDense: z
      .boolean()
      .default(false)
      .describe(
        "with tiles, in a network with convolutions: tile-pack the dense layer reading the convolutions too (HE-PEx can then prune and permute where a CNN's dense capacity sits). Each row of t2 slots of the conv output is masked into a ciphertext of its own and copied along t1 (one level, log2(t1) rotations per row), one input tile each; the tile shape is then free (auto: the cheapest by the cost model). Off: that layer is diagonal-packed and its output fixes t2 to its width",
      ),
    onnx: z
      .boolean()
      .optional()
      .describe(
        'also write the exported (pruned, fine-tuned) model as ONNX, export/model.onnx: input `input` [N, C, H, W], output `output`, every weight an initializer (default: off)',
      ),
    clientRotations: z
      .enum(['babies', 'all'])
      .optional()
      .describe(
        "the client also sends its input rotated by each of the first layer's baby steps (babies) or by each of its diagonals (all: that layer has no server rotation), one more ciphertext each: the server skips its costliest rotations, at the top level (default: off)",
      ),
    factorized: z
      .enum(['auto', 'split', 'fused'])
      .optional()
      .describe(
        'factorised convolutions (model.factorize, prune.method lowrank): each d×d + 1×1 pair as two linear steps (split: fewer plaintext multiplications and rotations), composed into one (fused: one level less), or auto (the default): every combination, the cheapest by the cost model; the plan records the choice',
      ),
    convPack: z
      .enum(['auto', 'none', 'reads', 'both'])
      .optional()
      .describe(
        "split factorised convolutions' layouts (FFConv ConvPack): channel blocks throughout (none), one channel per ciphertext between the d×d and the 1×1 half (reads: the 1×1 half has no channel shifts to rotate) or after the 1×1 half too (both: only rotation-free terms, but C_out ciphertexts for the next layers; compiled only when asked), or auto (the default): none or reads, the cheaper by the cost model; the plan records the choice",
      ),
    maxDepth: z
      .number()
      .int()
      .positive()
      .optional()
      .describe(
        "the deepest plan to choose: packings that need more levels (each factorised pair run split costs one more than fused) are skipped, and the cheapest of the rest kept (the HEMET search's written config sets its depth budget here, so the export compiles the plan the search measured). Default: any depth the parameters hold",
      ),
    maxGaloisKeyMB: z
      .number()
      .positive()
      .default(512)
      .describe('Galois key memory; past it keys are generated for powers of two only and rotations composed from them'),
  })
  .strict()
  .refine((e) => (e.polyModulusDegree === undefined) === (e.coeffModulusBits === undefined), {
    message: 'give both polyModulusDegree and coeffModulusBits, or neither',
  })
  .refine((e) => e.weightBits === undefined || e.polyModulusDegree === undefined, {
    message: 'weightBits chooses the rescale primes; with explicit coeffModulusBits give their sizes there instead',
    path: ['weightBits'],
  })
  .refine((e) => e.weightBits === undefined || (e.tiles === undefined && e.refresh === undefined), {
    message: 'weightBits applies to diagonal plans without tiles or refresh; leave it unset with those',
    path: ['weightBits'],
  });
export type ExportConfig = z.infer<typeof exportSchema>;

/** The compiler options an `export:` section asks for. */
export function compileOptions(e: ExportConfig): CompileOptions {
  return {
    params: e.polyModulusDegree
      ? { polyModulusDegree: e.polyModulusDegree, coeffModulusBits: e.coeffModulusBits!, scaleBits: e.scaleBits }
      : undefined,
    scaleBits: e.scaleBits,
    ...(e.weightBits !== undefined ? { weightBits: e.weightBits } : {}),
    headroomBits: e.headroomBits,
    bsgs: e.bsgs,
    channelBlocks: e.channelBlocks,
    refresh: e.refresh,
    tiles: e.tiles,
    tileFirstDense: e.tileFirstDense,
    groupOrder: e.groupOrder,
    clientRotations: e.clientRotations,
    ...(e.factorized ? { factorized: e.factorized } : {}),
    ...(e.convPack ? { convPack: e.convPack } : {}),
    ...(e.maxDepth !== undefined ? { maxDepth: e.maxDepth } : {}),
    maxGaloisKeyBytes: e.maxGaloisKeyMB * 2 ** 20,
  };
}
