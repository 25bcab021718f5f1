import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { GroupedConv2D } from '../layers/grouped-conv.js';
import { commonModelOptions, act, dense, Namer, type ModelContext } from './common.js';

export const cryptonetsOptions = z.object({
  name: z.literal('cryptonets'),
  ...commonModelOptions,
  activation: commonModelOptions.activation.default('square'),
  filters: z.number().int().positive().default(5).describe('maps of the strided 5x5 conv'),
  kernelSize: z.number().int().positive().default(5),
  stride: z.number().int().positive().default(2),
  hidden: z.number().int().positive().default(100).describe('units of the hidden FC layer'),
}).strict();

/** CryptoNets / LoLa MNIST net: strided 5x5 conv, x², FC, x², FC. */
export function buildCryptonets(o: z.infer<typeof cryptonetsOptions>, ctx: ModelContext): tf.Sequential {
  const n = new Namer();
  const m = tf.sequential({ name: 'cryptonets' });
  m.add(new GroupedConv2D({ name: n.next('conv'), filters: o.filters, kernelSize: o.kernelSize, strides: o.stride, padding: 'valid', inputShape: [...ctx.inputShape] }));
  m.add(act(o.activation, n, o.quadraticInit));
  m.add(tf.layers.flatten({ name: 'flatten' }));
  m.add(dense(o.hidden, n));
  m.add(act(o.activation, n, o.quadraticInit));
  m.add(dense(ctx.numClasses, n));
  return m;
}
