import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { GroupedConv2D } from '../layers/grouped-conv.js';
import { commonModelOptions, act, batchNorm, dense, Namer, type ModelContext } from './common.js';

export const resnetOptions = z.object({
  name: z.literal('resnet20'),
  ...commonModelOptions,
  batchNorm: commonModelOptions.batchNorm.default(true),
  depth: z.number().int().refine((d) => d >= 8 && (d - 2) % 6 === 0, 'depth must be 6n+2 (8, 14, 20, 32, …)').default(20),
  width: z.number().int().positive().default(16).describe('channels of the first stage (doubles per stage)'),
  groups: z.array(z.number().int().positive()).length(3).default([1, 1, 1]).describe('channel groups of the 3x3 convs in each stage'),
}).strict();

/** CIFAR ResNet (He et al.): 3 stages of (depth-2)/6 basic blocks, 1x1 projection shortcuts, global average pooling. */
export function buildResnet(o: z.infer<typeof resnetOptions>, ctx: ModelContext): tf.LayersModel {
  const n = new Namer();
  const blocks = (o.depth - 2) / 6;
  const conv = (x: tf.SymbolicTensor, filters: number, k: number, stride: number, groups: number) =>
    new GroupedConv2D({ name: n.next('conv'), filters, kernelSize: k, strides: stride, padding: 'same', groups, useBias: !o.batchNorm }).apply(x) as tf.SymbolicTensor;
  const bn = (x: tf.SymbolicTensor) => (o.batchNorm ? (batchNorm(n).apply(x) as tf.SymbolicTensor) : x);
  const activation = (x: tf.SymbolicTensor) => act(o.activation, n, o.quadraticInit).apply(x) as tf.SymbolicTensor;

  const input = tf.input({ shape: [...ctx.inputShape], name: 'input' });
  let x = activation(bn(conv(input, o.width, 3, 1, 1)));
  let channels = o.width;
  for (let stage = 0; stage < 3; stage++) {
    const filters = o.width * 2 ** stage;
    for (let b = 0; b < blocks; b++) {
      const stride = stage > 0 && b === 0 ? 2 : 1;
      const g = o.groups[stage];
      let y = activation(bn(conv(x, filters, 3, stride, channels % g === 0 ? g : 1)));
      y = bn(conv(y, filters, 3, 1, g));
      const shortcut = stride !== 1 || channels !== filters ? bn(conv(x, filters, 1, stride, 1)) : x;
      x = activation(tf.layers.add({ name: n.next('add') }).apply([y, shortcut]) as tf.SymbolicTensor);
      channels = filters;
    }
  }
  x = tf.layers.globalAveragePooling2d({ name: n.next('pool') }).apply(x) as tf.SymbolicTensor;
  const out = dense(ctx.numClasses, n).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out, name: `resnet${o.depth}` });
}
