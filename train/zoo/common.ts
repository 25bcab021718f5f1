import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { ACTIVATIONS, activationLayer, type ActivationKind } from '../layers/poly-activation.js';

/** Keys every zoo model accepts. */
export const commonModelOptions = {
  activation: z.enum(ACTIVATIONS).default('quadratic')
    .describe('square = x², quadratic = trainable αx²+βx+c (HE-friendly), relu = plaintext baseline only'),
  batchNorm: z.boolean().default(false).describe('batch norm after each conv (folded into the weights at export)'),
  quadraticInit: z.object({
    alpha: z.number().describe('α, the coefficient of x²'),
    beta: z.number().describe('β, the coefficient of x'),
    c: z.number().describe('c, the constant'),
  }).strict()
    .default({ alpha: 0.1, beta: 1, c: 0 }).describe('initial α, β, c of quadratic activations'),
  factorize: z.object({
    layers: z.array(z.string().min(1)).min(1).describe('convolutions to factorise, by name (conv1, conv2, …; ungrouped only)'),
    rank: z.union([z.number().int().positive(), z.record(z.string(), z.number().int().positive())])
      .describe('r: output channels of the d×d half, one value for every layer or per layer by name'),
  }).strict().optional()
    .describe('FFConv: train each named d×d convolution C_in→C_out as a d×d convolution C_in→r followed by a 1×1 convolution r→C_out (named <layer>_1x1), no activation between; the HE plan runs each pair as two linear steps or composed into one, whichever the cost model finds cheaper (export.factorized)'),
};

/** A conv's group count: a number, or `auto` (chosen from the data size against the slots per ciphertext). */
export const groupsOption = z.union([z.number().int().positive(), z.literal('auto')]);
/** Optional without a default, so configs without `groups: auto` keep their training fingerprint. */
export const heSlotsOption = z.number().int().positive().optional()
  .describe('slots per ciphertext the HE plan will have (N/2), for groups: auto (default 8192)');
export const DEFAULT_HE_SLOTS = 8192;

/**
 * SpENCNN's HE-group count: the fewest groups (dividing both channel
 * counts) such that one group's input channels, each in a power-of-two
 * block of its grid, fit in one ciphertext of `slots` — so no product of a
 * grouped layer crosses ciphertexts.
 */
export function autoGroups(cin: number, cout: number, grid: number, slots: number): number {
  const block = 2 ** Math.ceil(Math.log2(grid));
  for (let g = 1; g <= cin; g++) if (cin % g === 0 && cout % g === 0 && (cin / g) * block <= slots) return g;
  return 1;
}

export type Task = 'classification' | 'reconstruction';

export interface ModelContext {
  inputShape: readonly [number, number, number];
  numClasses: number;
}

/** Uniform layer names (conv1, act1, pool1, fc1, …) so prune/export can address layers by name. */
export class Namer {
  private counts = new Map<string, number>();
  next(kind: string): string {
    const n = (this.counts.get(kind) ?? 0) + 1;
    this.counts.set(kind, n);
    return `${kind}${n}`;
  }
}

export function act(kind: ActivationKind, names: Namer, init?: { alpha: number; beta: number; c: number }): tf.layers.Layer {
  return activationLayer(kind, names.next('act'), init);
}

/** Dense layer with the fan-in-scaled normal init that polynomial nets need. */
export function dense(units: number, names: Namer, args: { inputShape?: number[]; useBias?: boolean } = {}): tf.layers.Layer {
  return tf.layers.dense({
    units, name: names.next('fc'), inputShape: args.inputShape, useBias: args.useBias ?? true,
    kernelInitializer: tf.initializers.varianceScaling({ scale: 1, mode: 'fanIn', distribution: 'normal' }),
  });
}

export function avgPool(size: number, names: Namer): tf.layers.Layer {
  return tf.layers.averagePooling2d({ poolSize: size, strides: size, padding: 'valid', name: names.next('pool') });
}

export function batchNorm(names: Namer): tf.layers.Layer {
  return tf.layers.batchNormalization({ name: names.next('bn'), momentum: 0.9 });
}
