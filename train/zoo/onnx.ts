import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { UserError } from '../../common/errors.js';
import { importOnnx } from '../import/onnx-import.js';
import { commonModelOptions, type ModelContext } from './common.js';

export const onnxOptions = z
  .object({
    name: z.literal('onnx'),
    file: z.string().min(1).describe('an HE-friendly ONNX model (e.g. from torch.onnx.export), imported with its weights: see heprune import'),
    sha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .optional()
      .describe("the file's sha256 (heprune import writes it): a changed file is refused rather than silently trained, pruned or resumed"),
    task: z
      .enum(['classification', 'reconstruction'])
      .default('classification')
      .describe('what the output is: class logits (one per dataset class), or a reconstruction of the input'),
    factorize: commonModelOptions.factorize,
  })
  .strict();

/** The imported network with the ONNX file's weights (training fine-tunes them). */
export function buildOnnx(o: z.infer<typeof onnxOptions>, ctx: ModelContext): tf.LayersModel {
  let bytes: Buffer;
  try {
    bytes = readFileSync(o.file);
  } catch (e) {
    throw new UserError(`model.file: ${o.file}: ${(e as Error).message}`);
  }
  const sha = createHash('sha256').update(bytes).digest('hex');
  if (o.sha256 && o.sha256 !== sha) throw new UserError(`model.file: ${o.file} has sha256 ${sha}, the config expects ${o.sha256} (model.sha256)`);
  const m = importOnnx(bytes, o.file);
  if (m.inputShape.join() !== ctx.inputShape.join()) {
    m.model.dispose();
    throw new UserError(`model.file: ${o.file} reads [${m.inputShape.join(', ')}] (H, W, C), the dataset has [${ctx.inputShape.join(', ')}]`);
  }
  if (o.task === 'classification' && m.outputs !== ctx.numClasses) {
    m.model.dispose();
    throw new UserError(`model.file: ${o.file} has ${m.outputs} outputs, the dataset ${ctx.numClasses} classes`);
  }
  return m.model;
}
