import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { GroupedConv2D } from '../layers/grouped-conv.js';
import { commonModelOptions, act, autoGroups, avgPool, DEFAULT_HE_SLOTS, batchNorm, dense, groupsOption, heSlotsOption, Namer, type ModelContext } from './common.js';

/**
 * Plain conv stacks: each stage is a 3x3 conv, (batch norm), activation and
 * 2x2 average pooling, then FC layers. VGG-5 and HEFNet are two settings of it.
 */
function convnetOptions<N extends string>(name: N, d: { filters: number[]; groups: number[]; dense: number[] }) {
  return z.object({
    name: z.literal(name),
    ...commonModelOptions,
    batchNorm: commonModelOptions.batchNorm.default(true),
    filters: z.array(z.number().int().positive()).min(1).default(d.filters).describe('output channels of each 3x3 conv stage'),
    groups: z.array(groupsOption).default(d.groups).describe('channel groups per conv stage (1 = ordinary conv; auto: the fewest whose input channels fit one ciphertext of model.heSlots)'),
    heSlots: heSlotsOption,
    dense: z.array(z.number().int().positive()).default(d.dense).describe('hidden FC units before the classifier'),
  }).strict();
}

export const vgg5Options = convnetOptions('vgg5', { filters: [64, 128, 128], groups: [1, 1, 1], dense: [] });
export const hefnetOptions = convnetOptions('hefnet', { filters: [256, 128, 64, 64], groups: [1, 1, 1, 1], dense: [] });

export function buildConvnet(o: z.infer<typeof vgg5Options> | z.infer<typeof hefnetOptions>, ctx: ModelContext): tf.Sequential {
  if (o.groups.length !== o.filters.length) {
    throw new Error(`model.groups has ${o.groups.length} entries but model.filters has ${o.filters.length}`);
  }
  const n = new Namer();
  const m = tf.sequential({ name: o.name });
  let size = Math.min(ctx.inputShape[0], ctx.inputShape[1]);
  o.filters.forEach((f, i) => {
    const cin = i === 0 ? ctx.inputShape[2] : o.filters[i - 1];
    const groups = o.groups[i] === 'auto' ? autoGroups(cin, f, size * size, o.heSlots ?? DEFAULT_HE_SLOTS) : o.groups[i] as number;
    m.add(new GroupedConv2D({
      name: n.next('conv'), filters: f, kernelSize: 3, padding: 'same', groups,
      inputShape: i === 0 ? [...ctx.inputShape] : undefined,
    }));
    if (o.batchNorm) m.add(batchNorm(n));
    m.add(act(o.activation, n, o.quadraticInit));
    if (size >= 4) { m.add(avgPool(2, n)); size = Math.floor(size / 2); }
  });
  m.add(tf.layers.flatten({ name: 'flatten' }));
  for (const u of o.dense) {
    m.add(dense(u, n));
    m.add(act(o.activation, n, o.quadraticInit));
  }
  m.add(dense(ctx.numClasses, n));
  return m;
}
