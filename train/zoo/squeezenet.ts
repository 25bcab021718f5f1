import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { UserError } from '../../common/errors.js';
import { GroupedConv2D } from '../layers/grouped-conv.js';
import { applyBlock, blockName, blockSchema, type BlockSpec } from './blocks.js';
import { commonModelOptions, type ModelContext } from './common.js';

/**
 * HEMET's HE-friendly SqueezeNet for CIFAR-10: a 3×3 stem, Fire modules,
 * average pooling, a 1×1 classifier convolution and global average pooling,
 * polynomial activations throughout. Its blocks are a list the HEMET search
 * rewrites block by block (a regular convolution, a Fire module or a
 * mobile block in each place).
 *
 * Widths, from HEMET's code (qianlou/HEMET, src/8_squeezenet.cpp). It has no
 * network definition, only a latency cost model: 13 layers with constant
 * op counts (Mul_number, Rot_number, in thousands) times measured op times.
 * Read as products ≈ k²·C_in·C_out and rotations ≈ k²·C_in, they give:
 * conv1 3×3 3→64 (1.728 = 27·64 products, 0.027 = 27 rotations); two
 * average pools (0.256 each, layers 1 and 6); four Fire modules, each a
 * squeeze 1×1 → 32 (2.048 = 64·32, 4.096 = 128·32) and expand 1×1 ∥ 3×3
 * of 64 (Fire modules 1–2: 20.47 ≈ 32·(64 + 9·64), 0.320 = 32·(1 + 9)) or
 * 128 channels each (Fire modules 3–4: 40.96 = 32·(128 + 9·128)); the
 * classifier 1×1 256→10 (2.56 = 256·10, 256 = the last Fire's 2·128
 * outputs); then a 128·10 product count (layer 12) before the final pool.
 * The constants are approximate (the squeezes' input counts, 64, 64, 64,
 * 128, are half the preceding expands' outputs), so the widths are its
 * expand and squeeze widths with SqueezeNet's channel bookkeeping: conv1 64,
 * pool, fire2 (32, 64+64), fire3 (32, 64+64), pool, fire4 (32, 128+128),
 * fire5 (32, 128+128), pool, classifier 256→10, global pool. They fit CKKS
 * slots: 64 channels of 32×32 are 4 (N=32768) or 8 (N=16384) ciphertexts,
 * and after two pools the 256 channels of fire5 multiplex into one.
 * The baseline's depth is 19 (2 for conv1, 4 per Fire, 1 for the
 * classifier; pooling costs none): N=32768 at a 40-bit scale.
 *
 * Fire removals: HEMET numbers its Fire modules 1–4 in order (its printouts
 * say Squeeze1 … Squeeze4), so `remove_fire4` is the fourth (fire5 here),
 * `remove_fire34` the third and fourth (fire4, fire5), `remove_fire234` all
 * but the first (fire3–fire5). Its code replaces each removed module by
 * one regular 3×3 convolution (the module's squeeze keeps a count of
 * 73 ≈ 9·64·128 or 90 products and 576 = 9·64 or 800 rotations, its expand
 * count becomes 0) rather than dropping it, so here a removed Fire is a
 * 3×3 conv block with the module's output channels (conv5 256→256, …): the
 * rest of the network keeps its shapes, and each removal saves 2 levels
 * (HEMET: 17 primes at N=65536 for the baseline, 13–15 at N=32768 for
 * these). HEMET's `remove_fire34_merge` is remove_fire34 with coefficient
 * merging, which every plan here does (export/lower).
 */
export const SQUEEZENET_PRESETS = ['baseline', 'remove_fire4', 'remove_fire34', 'remove_fire234'] as const;
export type SqueezenetPreset = (typeof SQUEEZENET_PRESETS)[number];

const fire = (squeeze: number, expand: number, pool = false): BlockSpec => ({ kind: 'fire', squeeze, expand, pool });
const conv = (filters: number, pool = false): BlockSpec => ({ kind: 'conv', filters, kernelSize: 3, pool });

const BASELINE: BlockSpec[] = [conv(64, true), fire(32, 64), fire(32, 64, true), fire(32, 128), fire(32, 128, true)];

/** The block list of a preset: the baseline with HEMET's removed Fire modules as 3×3 convolutions. */
export function presetBlocks(preset: SqueezenetPreset): BlockSpec[] {
  const removed: number[] = { baseline: [], remove_fire4: [4], remove_fire34: [3, 4], remove_fire234: [2, 3, 4] }[preset];
  return BASELINE.map((b, i) => (removed.includes(i) && b.kind === 'fire' ? conv(2 * b.expand, b.pool) : b));
}

export const squeezenetOptions = z.object({
  name: z.literal('squeezenet'),
  ...commonModelOptions,
  batchNorm: commonModelOptions.batchNorm.default(true),
  preset: z.enum(SQUEEZENET_PRESETS).optional()
    .describe('the blocks of a named network (default baseline: conv1 3×3 64 + pool, fire2, fire3 + pool, fire4, fire5 + pool); remove_fire4, remove_fire34, remove_fire234: HEMET\'s Fire removals, each removed module a 3×3 conv of its output width'),
  blocks: z.array(blockSchema).min(1).optional()
    .describe('the blocks before the classifier, in order, instead of a preset; block i is named <kind><i> (conv1, fire2, mobile3, …), its layers <block>_<role>'),
}).strict().refine((o) => o.preset === undefined || o.blocks === undefined, {
  path: ['blocks'],
  message: 'give model.preset or model.blocks, not both',
});

/** The blocks a squeezenet config builds. */
export const squeezenetBlocks = (o: z.infer<typeof squeezenetOptions>) => o.blocks ?? presetBlocks(o.preset ?? 'baseline');

export function buildSqueezenet(o: z.infer<typeof squeezenetOptions>, ctx: ModelContext): tf.LayersModel {
  const blocks = squeezenetBlocks(o);
  const pools = blocks.filter((b) => b.pool).length;
  const [H, W] = ctx.inputShape;
  if (Math.min(H, W) < 2 ** pools)
    throw new UserError(`model.blocks: ${pools} pools halve a ${H}x${W} input to nothing; use fewer blocks with pool: true`);
  const input = tf.input({ shape: [...ctx.inputShape], name: 'input' });
  let x = input as tf.SymbolicTensor;
  blocks.forEach((b, i) => {
    x = applyBlock(x, b, blockName(b.kind, i), o);
  });
  // No activation before the global pool: classifier and pool fold into one linear map.
  x = new GroupedConv2D({ name: 'classifier', filters: ctx.numClasses, kernelSize: 1, padding: 'valid' }).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: 'squeezenet' });
}
