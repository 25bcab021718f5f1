import * as tf from '@tensorflow/tfjs';
import { UserError } from '../common/errors.js';

/** Kernel masks by layer name (1 keep, 0 pruned), the kernel's flattened shape. */
export type KernelMasks = Map<string, Float32Array>;

export function kernelOf(model: tf.LayersModel, name: string): tf.LayerVariable {
  const layer = model.getLayer(name);
  const k = layer.trainableWeights[0];
  if (!k) throw new UserError(`prune: layer ${name} has no kernel`);
  return k;
}

/** Zeroes every masked weight (after each optimizer step, so pruned weights stay at zero while fine-tuning). */
export function applyKernelMasks(model: tf.LayersModel, masks: KernelMasks): void {
  for (const [name, mask] of masks) {
    const v = kernelOf(model, name);
    tf.tidy(() => {
      v.write(tf.mul(v.read(), tf.tensor(mask, v.shape as number[])));
    });
  }
}
