import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { GroupedConv2D } from '../layers/grouped-conv.js';
import { activationLayer, type ActivationKind } from '../layers/poly-activation.js';

/**
 * The interchangeable blocks of HEMET's search: a regular convolution, a
 * SqueezeNet Fire module, a MobileNet block. Each is named by its kind and
 * position (conv1, fire2, mobile3, …) and its layers by the block's name and
 * their role (fire2_squeeze, fire2_expand3x3, mobile3_dw, …), so pruning and
 * export address them by name and the plan's depth per block reads the
 * block off a layer's name (the part before the first `_`). Pooling is
 * average pooling only: max pooling has no HE form.
 */
const pool = z.boolean().default(false).describe('2x2 average pooling after the block');
const width = z.number().int().positive();

export const blockSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('conv'),
    filters: width.describe('output channels'),
    kernelSize: z.literal([1, 3, 5]).default(3).describe('kernel size (same padding)'),
    pool,
  }).strict().describe('a regular convolution: conv k×k → (batch norm) → activation (depth 2)'),
  z.object({
    kind: z.literal('fire'),
    squeeze: width.describe('output channels of the 1×1 squeeze convolution'),
    expand: width.describe('output channels of each expand branch (1×1 and 3×3); the block outputs twice as many'),
    pool,
  }).strict().describe('a SqueezeNet Fire module: squeeze 1×1 → (bn) → act → expand 1×1 ∥ expand 3×3, concatenated → (bn) → act (depth 4: the two expand branches are one HE step)'),
  z.object({
    kind: z.literal('mobile'),
    filters: width.describe('output channels of the pointwise convolution'),
    middleActivation: z.boolean().default(true)
      .describe('an activation between the depthwise and the pointwise convolution (depth 4); without it the two are a factorised pair the HE plan runs split (depth 3) or composed into one map (depth 2), whichever the cost model finds cheaper'),
    pool,
  }).strict().describe('a MobileNet block: depthwise 3×3 → (bn) → act → pointwise 1×1 → (bn) → act'),
]);
export type BlockSpec = z.infer<typeof blockSchema>;

/** The model-wide settings every block follows. */
export interface BlockStyle {
  activation: ActivationKind;
  batchNorm: boolean;
  quadraticInit: { alpha: number; beta: number; c: number };
}

/** The name of block `index` (0-based) of `kind`: its kind and 1-based position. */
export const blockName = (kind: BlockSpec['kind'], index: number) => `${kind}${index + 1}`;

/** Layer constructors under one block's style; every layer is named. */
class Layers {
  constructor(private readonly style: BlockStyle) {}

  conv(x: tf.SymbolicTensor, name: string, o: { filters: number; kernelSize: number; groups?: number; factorOf?: string }): tf.SymbolicTensor {
    // Batch norm follows every conv of a block, so its shift is the bias.
    const layer = new GroupedConv2D({ name, padding: 'same', useBias: !this.style.batchNorm, ...o });
    return layer.apply(x) as tf.SymbolicTensor;
  }

  bn(x: tf.SymbolicTensor, name: string): tf.SymbolicTensor {
    return this.style.batchNorm ? (tf.layers.batchNormalization({ name, momentum: 0.9 }).apply(x) as tf.SymbolicTensor) : x;
  }

  act(x: tf.SymbolicTensor, name: string): tf.SymbolicTensor {
    return activationLayer(this.style.activation, name, this.style.quadraticInit).apply(x) as tf.SymbolicTensor;
  }

  pool(x: tf.SymbolicTensor, name: string, on: boolean): tf.SymbolicTensor {
    if (!on) return x;
    return tf.layers.averagePooling2d({ name, poolSize: 2, strides: 2, padding: 'valid' }).apply(x) as tf.SymbolicTensor;
  }
}

/** Block `spec` named `name` applied to `x`. */
export function applyBlock(x: tf.SymbolicTensor, spec: BlockSpec, name: string, style: BlockStyle): tf.SymbolicTensor {
  const l = new Layers(style);
  let y: tf.SymbolicTensor;
  if (spec.kind === 'conv') {
    y = l.act(l.bn(l.conv(x, name, { filters: spec.filters, kernelSize: spec.kernelSize }), `${name}_bn`), `${name}_act`);
  } else if (spec.kind === 'fire') {
    const s = l.act(l.bn(l.conv(x, `${name}_squeeze`, { filters: spec.squeeze, kernelSize: 1 }), `${name}_squeeze_bn`), `${name}_squeeze_act`);
    const e1 = l.conv(s, `${name}_expand1x1`, { filters: spec.expand, kernelSize: 1 });
    const e3 = l.conv(s, `${name}_expand3x3`, { filters: spec.expand, kernelSize: 3 });
    const cat = tf.layers.concatenate({ name: `${name}_concat` }).apply([e1, e3]) as tf.SymbolicTensor;
    y = l.act(l.bn(cat, `${name}_bn`), `${name}_act`);
  } else {
    const channels = x.shape[3] as number;
    let d = l.bn(l.conv(x, `${name}_dw`, { filters: channels, kernelSize: 3, groups: channels }), `${name}_dw_bn`);
    if (spec.middleActivation) d = l.act(d, `${name}_dw_act`);
    // Without the middle activation the pointwise conv completes a factorised pair (lowered as two linear steps or one).
    const factorOf = spec.middleActivation ? undefined : `${name}_dw`;
    const p = l.conv(d, `${name}_pw`, { filters: spec.filters, kernelSize: 1, ...(factorOf ? { factorOf } : {}) });
    y = l.act(l.bn(p, `${name}_pw_bn`), `${name}_act`);
  }
  return l.pool(y, `${name}_pool`, spec.pool);
}

/** Output channels of a block. */
export const blockChannels = (spec: BlockSpec) => (spec.kind === 'fire' ? 2 * spec.expand : spec.filters);
