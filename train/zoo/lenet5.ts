import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { GroupedConv2D } from '../layers/grouped-conv.js';
import { commonModelOptions, act, autoGroups, avgPool, DEFAULT_HE_SLOTS, batchNorm, dense, groupsOption, heSlotsOption, Namer, type ModelContext } from './common.js';

export const lenet5Options = z.object({
  name: z.literal('lenet5'),
  ...commonModelOptions,
  conv1: z.number().int().positive().default(64),
  conv2: z.number().int().positive().default(32),
  groups: groupsOption.default(4).describe('channel groups of conv2 (SpENCNN HE-group convolution), or auto: the fewest whose input channels fit one ciphertext of model.heSlots'),
  heSlots: heSlotsOption,
  hidden: z.number().int().positive().default(32),
  finalPool: z.union([z.literal('global'), z.number().int().positive()]).default(2)
    .describe("pooling after conv2: a window size, or 'global' to average to 1x1 (FC input = conv2 channels)"),
}).strict();

/**
 * SpENCNN's LeNet-5: conv 1→64 5x5 pad 2, act, avgpool 2, conv 64→32 5x5 in
 * 4 groups, act, avgpool, FC →32, act, FC →10.
 */
export function buildLenet5(o: z.infer<typeof lenet5Options>, ctx: ModelContext): tf.Sequential {
  const n = new Namer();
  const m = tf.sequential({ name: 'lenet5' });
  m.add(new GroupedConv2D({ name: n.next('conv'), filters: o.conv1, kernelSize: 5, padding: 2, inputShape: [...ctx.inputShape] }));
  if (o.batchNorm) m.add(batchNorm(n));
  m.add(act(o.activation, n, o.quadraticInit));
  m.add(avgPool(2, n));
  const [H, W] = ctx.inputShape;
  const groups = o.groups === 'auto' ? autoGroups(o.conv1, o.conv2, Math.floor(H / 2) * Math.floor(W / 2), o.heSlots ?? DEFAULT_HE_SLOTS) : o.groups;
  m.add(new GroupedConv2D({ name: n.next('conv'), filters: o.conv2, kernelSize: 5, padding: 'valid', groups }));
  if (o.batchNorm) m.add(batchNorm(n));
  m.add(act(o.activation, n, o.quadraticInit));
  if (o.finalPool === 'global') {
    m.add(tf.layers.globalAveragePooling2d({ name: n.next('pool') }));
  } else {
    m.add(avgPool(o.finalPool, n));
    m.add(tf.layers.flatten({ name: 'flatten' }));
  }
  m.add(dense(o.hidden, n));
  m.add(act(o.activation, n, o.quadraticInit));
  m.add(dense(ctx.numClasses, n));
  return m;
}
