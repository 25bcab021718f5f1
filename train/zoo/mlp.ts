import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { commonModelOptions, act, dense, Namer, type ModelContext } from './common.js';

export const mlpOptions = z.object({
  name: z.literal('mlp'),
  ...commonModelOptions,
  hidden: z.array(z.number().int().positive()).min(1).default([128, 128]),
}).strict();

export const autoencoderOptions = z.object({
  name: z.literal('autoencoder'),
  ...commonModelOptions,
  hidden: z.array(z.number().int().positive()).min(1).default([256, 64, 256])
    .describe('units of the hidden layers; the output layer reconstructs the input'),
}).strict();

function stack(m: tf.Sequential, hidden: number[], ctx: ModelContext, o: z.infer<typeof mlpOptions> | z.infer<typeof autoencoderOptions>, n: Namer) {
  const inputSize = ctx.inputShape[0] * ctx.inputShape[1] * ctx.inputShape[2];
  m.add(tf.layers.flatten({ name: 'flatten', inputShape: [...ctx.inputShape] }));
  hidden.forEach((u) => {
    m.add(dense(u, n));
    m.add(act(o.activation, n, o.quadraticInit));
  });
  return inputSize;
}

/** Fully-connected classifier. */
export function buildMlp(o: z.infer<typeof mlpOptions>, ctx: ModelContext): tf.Sequential {
  const n = new Namer();
  const m = tf.sequential({ name: 'mlp' });
  stack(m, o.hidden, ctx, o, n);
  m.add(dense(ctx.numClasses, n));
  return m;
}

/** Fully-connected autoencoder (HE-PEx): reconstructs the flattened, normalised input. */
export function buildAutoencoder(o: z.infer<typeof autoencoderOptions>, ctx: ModelContext): tf.Sequential {
  const n = new Namer();
  const m = tf.sequential({ name: 'autoencoder' });
  const inputSize = stack(m, o.hidden, ctx, o, n);
  m.add(dense(inputSize, n));
  return m;
}
